package declared

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrTemplate wraps every error of a template: a bad placeholder when the
// workflow is checked, a missing value when a step runs.
var ErrTemplate = errors.New("declared: template")

// A template is a string with placeholders {{ROOT.PATH}}:
//
//	{{input.order_id}}        the run's input, field order_id
//	{{steps.lookup.items.0}}  step lookup's output, field items, element 0
//	{{run.id}}                the run's ID ({{run.workflow}}: its workflow)
//
// A path is dot-separated; a segment that is a number indexes an array. A
// string that is one placeholder and nothing else is replaced by the value
// itself (a number stays a number, an object an object); a placeholder
// inside longer text is replaced by the value's text (a string as is,
// anything else as compact JSON).
type template struct {
	text  string
	parts []part
}

type part struct {
	lit  string   // literal text, when ref is nil
	ref  []string // root then path, e.g. ["steps", "lookup", "items", "0"]
	orig string   // the placeholder as written, for errors
}

// parseTemplate parses s. earlier, if not nil, is the set of step names a
// steps reference may name.
func parseTemplate(s string, earlier map[string]bool) (*template, error) {
	t := &template{text: s}
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, fmt.Errorf("%w: %q: \"}}\" without \"{{\"", ErrTemplate, s)
			}
			if rest != "" {
				t.parts = append(t.parts, part{lit: rest})
			}
			return t, nil
		}
		if i > 0 {
			if strings.Contains(rest[:i], "}}") {
				return nil, fmt.Errorf("%w: %q: \"}}\" without \"{{\"", ErrTemplate, s)
			}
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, fmt.Errorf("%w: %q: \"{{\" without \"}}\"", ErrTemplate, s)
		}
		expr := strings.TrimSpace(rest[:j])
		rest = rest[j+2:]
		ref := strings.Split(expr, ".")
		for _, seg := range ref {
			if seg == "" {
				return nil, fmt.Errorf("%w: {{%s}}: empty path segment", ErrTemplate, expr)
			}
		}
		switch ref[0] {
		case "input":
		case "steps":
			if len(ref) < 2 {
				return nil, fmt.Errorf("%w: {{%s}}: name a step (steps.NAME)", ErrTemplate, expr)
			}
			if earlier != nil && !earlier[ref[1]] {
				return nil, fmt.Errorf("%w: {{%s}}: no earlier step %q", ErrTemplate, expr, ref[1])
			}
		case "run":
			if len(ref) != 2 || (ref[1] != "id" && ref[1] != "workflow") {
				return nil, fmt.Errorf("%w: {{%s}}: want run.id or run.workflow", ErrTemplate, expr)
			}
		default:
			return nil, fmt.Errorf("%w: {{%s}}: want input, steps.NAME or run", ErrTemplate, expr)
		}
		t.parts = append(t.parts, part{ref: ref, orig: "{{" + expr + "}}"})
	}
}

// scope is what a template's placeholders are filled from.
type scope interface {
	Input() json.RawMessage
	Output(step string) (json.RawMessage, bool)
	RunID() string
	Workflow() string
}

// lookup resolves a reference to a JSON value.
func lookup(sc scope, ref []string) (any, error) {
	var doc json.RawMessage
	path := ref[1:]
	switch ref[0] {
	case "run":
		if ref[1] == "id" {
			return sc.RunID(), nil
		}
		return sc.Workflow(), nil
	case "input":
		doc = sc.Input()
	case "steps":
		out, ok := sc.Output(ref[1])
		if !ok {
			return nil, fmt.Errorf("step %q has no output", ref[1])
		}
		doc, path = out, ref[2:]
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	for _, seg := range path {
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[seg]
			if !ok {
				return nil, fmt.Errorf("no field %q", seg)
			}
			v = x
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("no element %q in an array of %d", seg, len(c))
			}
			v = c[n]
		default:
			return nil, fmt.Errorf("%q: not an object or array", seg)
		}
	}
	return v, nil
}

// value fills the template: one lone placeholder gives its value, anything
// else a string.
func (t *template) value(sc scope) (any, error) {
	if len(t.parts) == 1 && t.parts[0].ref != nil {
		v, err := lookup(sc, t.parts[0].ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrTemplate, t.parts[0].orig, err)
		}
		return v, nil
	}
	return t.string(sc, nil)
}

// string fills the template as text; escape, if set, escapes each
// inserted value.
func (t *template) string(sc scope, escape func(string) string) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := lookup(sc, p.ref)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrTemplate, p.orig, err)
		}
		s, ok := v.(string)
		if !ok {
			j, _ := json.Marshal(v)
			s = string(j)
		}
		if escape != nil {
			s = escape(s)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// parseValue parses the templates in v, a value decoded from TOML (strings,
// numbers, booleans, arrays, tables), and returns a function that fills
// them.
func parseValue(v any, earlier map[string]bool) (func(scope) (any, error), error) {
	switch x := v.(type) {
	case string:
		t, err := parseTemplate(x, earlier)
		if err != nil {
			return nil, err
		}
		return t.value, nil
	case map[string]any:
		fill := map[string]func(scope) (any, error){}
		for k, e := range x {
			f, err := parseValue(e, earlier)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			fill[k] = f
		}
		return func(sc scope) (any, error) {
			out := make(map[string]any, len(fill))
			for k, f := range fill {
				v, err := f(sc)
				if err != nil {
					return nil, err
				}
				out[k] = v
			}
			return out, nil
		}, nil
	case []any:
		fill := make([]func(scope) (any, error), len(x))
		for i, e := range x {
			f, err := parseValue(e, earlier)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			fill[i] = f
		}
		return func(sc scope) (any, error) {
			out := make([]any, len(fill))
			for i, f := range fill {
				v, err := f(sc)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		}, nil
	}
	return func(scope) (any, error) { return v, nil }, nil
}
