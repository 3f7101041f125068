package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// locations maps the paths of a file's tables and keys
// ("orchestration.graph.edges[1].to", "agents[0].handoff.vip") to the line
// where they are written, so that errors found after decoding can name it.
type locations struct {
	lines map[string]int
}

// locate reads the tables and keys of a TOML file line by line. It knows
// enough TOML for the lines of configuration files: [table] and
// [[array]] headers, dotted and quoted keys, and multi-line strings, whose
// inside it skips. A nil file locates nothing.
func locate(file []byte) locations {
	loc := locations{lines: map[string]int{}}
	if file == nil {
		return loc
	}
	count := map[string]int{} // array path (with the parents' indexes) → entries so far
	// resolve turns a dotted header into a path, indexing the arrays it
	// goes through with their current entry.
	resolve := func(parts []string) string {
		p := ""
		for _, part := range parts {
			if p != "" {
				p += "."
			}
			p += part
			if n, ok := count[p]; ok {
				p += fmt.Sprintf("[%d]", n-1)
			}
		}
		return p
	}
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(nil, 1<<20)
	current, line, inString := "", 0, false
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if c := strings.Count(text, `"""`) + strings.Count(text, `'''`); c%2 == 1 {
			wasIn := inString
			inString = !inString
			if wasIn {
				continue
			}
		} else if inString {
			continue
		}
		switch {
		case text == "" || text[0] == '#':
		case strings.HasPrefix(text, "[["):
			end := strings.Index(text, "]]")
			if end < 0 {
				continue
			}
			parts := splitKey(text[2:end])
			parent := resolve(parts[:len(parts)-1])
			arr := parts[len(parts)-1]
			if parent != "" {
				arr = parent + "." + arr
			}
			count[arr]++
			if _, ok := loc.lines[arr]; !ok {
				loc.lines[arr] = line // the array: its first entry
			}
			current = fmt.Sprintf("%s[%d]", arr, count[arr]-1)
			loc.lines[current] = line
		case text[0] == '[':
			end := strings.IndexByte(text, ']')
			if end < 0 {
				continue
			}
			current = resolve(splitKey(text[1:end]))
			if _, ok := loc.lines[current]; !ok {
				loc.lines[current] = line
			}
		default:
			eq := keyEnd(text)
			if eq < 0 {
				continue
			}
			key := strings.Join(splitKey(text[:eq]), ".")
			if current != "" {
				key = current + "." + key
			}
			loc.lines[key] = line
		}
	}
	return loc
}

// at returns " (line N)" for path, or for the nearest enclosing table or
// key that has a line; "" if none.
func (l locations) at(path string) string {
	for p := path; p != ""; {
		if n, ok := l.lines[p]; ok {
			return fmt.Sprintf(" (line %d)", n)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}

// splitKey splits a dotted key, unquoting its parts.
func splitKey(s string) []string {
	var parts []string
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(b.String()))
			b.Reset()
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(b.String()))
}

// keyEnd returns the index of the '=' that ends a key/value line's key,
// outside quotes, or -1.
func keyEnd(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		}
	}
	return -1
}
