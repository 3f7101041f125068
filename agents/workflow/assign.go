package workflow

import (
	"strings"
	"unicode"
)

// Assignment is one line of a plan or a decomposition: a task for a named
// worker.
type Assignment struct {
	Worker string // as listed in the workers given to ParseAssignments
	Task   string
}

// ParseAssignments reads "worker: task" lines from a model's answer, in
// order. A line may start with a list marker ("1.", "2)", "-", "*", "•") or
// "Step 3:", and the worker's name may be wrapped in ** or backticks; names
// are matched against workers ignoring case and reported as spelled there.
// Lines that are not assignments (prose, a heading, an unknown worker, an
// empty task) are skipped and counted in skipped.
func ParseAssignments(text string, workers []string) (steps []Assignment, skipped int) {
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, ok := parseAssignment(line, workers)
		if !ok {
			skipped++
			continue
		}
		steps = append(steps, a)
	}
	return steps, skipped
}

func parseAssignment(line string, workers []string) (Assignment, bool) {
	line = trimListMarker(line)
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return Assignment{}, false
	}
	who := strings.Trim(strings.TrimSpace(line[:colon]), "*`_\"'[]")
	task := strings.TrimSpace(strings.TrimLeft(line[colon+1:], "*` "))
	if task == "" {
		return Assignment{}, false
	}
	for _, w := range workers {
		if strings.EqualFold(who, w) {
			return Assignment{Worker: w, Task: task}, true
		}
	}
	return Assignment{}, false
}

// trimListMarker removes a leading "12.", "3)", "-", "*", "•" or "Step 4:"
// (any case) and the spaces after it.
func trimListMarker(s string) string {
	if len(s) >= 4 && strings.EqualFold(s[:4], "step") {
		rest := strings.TrimLeft(s[4:], " ")
		digits := strings.TrimLeftFunc(rest, unicode.IsDigit)
		if len(digits) < len(rest) {
			s = strings.TrimLeft(digits, ".):- ")
			return strings.TrimSpace(s)
		}
	}
	digits := strings.TrimLeftFunc(s, unicode.IsDigit)
	if len(digits) < len(s) && digits != "" && (digits[0] == '.' || digits[0] == ')') {
		return strings.TrimSpace(digits[1:])
	}
	for _, m := range []string{"-", "•", "*"} {
		if strings.HasPrefix(s, m) && !strings.HasPrefix(s, "**") {
			return strings.TrimSpace(s[len(m):])
		}
	}
	return s
}
