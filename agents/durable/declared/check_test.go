package declared_test

import (
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable/declared"
)

func TestCheck(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	ok := declared.Step{Name: "a", Say: "hi"}
	tests := []struct {
		name string
		cfg  declared.Config
		step int    // -1: the workflow's own keys
		want string // in the problem's text
	}{
		{"bad name", declared.Config{Name: "1x", Steps: []declared.Step{ok}}, -1, `name "1x"`},
		{"no steps", declared.Config{Name: "w"}, -1, "steps: none"},
		{"bad schema", declared.Config{Name: "w", Input: `{"type":"string"}`, Steps: []declared.Step{ok}}, -1, "input:"},
		{"two kinds", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "x", Tool: "t"}}}, 0, "exactly one of"},
		{"no kind", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a"}}}, 0, "exactly one of"},
		{"key of another kind", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Tool: "t", Body: map[string]any{}}}}, 0, "body: not a key of a tool step"},
		{"duplicate step", declared.Config{Name: "w", Steps: []declared.Step{ok, ok}}, 1, "duplicate"},
		{"later step", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "{{steps.b.x}}"}, {Name: "b", Say: "x"}}}, 0, `no earlier step "b"`},
		{"unknown root", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "{{secrets.x}}"}}}, 0, "want input, steps.NAME or run"},
		{"unclosed", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "{{input.x"}}}, 0, `without "}}"`},
		{"stray close", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "x}}"}}}, 0, `without "{{"`},
		{"template in args", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Tool: "t", Args: map[string]any{"x": []any{"{{run.nope}}"}}}}}, 0, "args.x: [0]"},
		{"url scheme", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", URL: "ftp://x"}}}, 0, "want http:// or https://"},
		{"method", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", URL: "http://x", Method: "BREW"}}}, 0, `method "BREW"`},
		{"unset variable", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", URL: "http://x", Headers: map[string]string{"K": "${NOPE_VAR}"}}}}, 0, "NOPE_VAR is not set"},
		{"agent without prompt", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Agent: "x"}}}, 0, "prompt: required"},
		{"default without wait", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Signal: "go", Default: true}}}, 0, "default: only with wait"},
		{"negative sleep", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Sleep: -time.Second}}}, 0, "sleep -1s"},
		{"retries", declared.Config{Name: "w", Steps: []declared.Step{{Name: "a", Say: "x", Retries: -1}}}, 0, "retries -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := declared.Check(tc.cfg, noEnv)
			for _, p := range ps {
				if p.Step == tc.step && strings.Contains(p.Error(), tc.want) {
					return
				}
			}
			t.Errorf("problems = %v, want one at step %d containing %q", ps, tc.step, tc.want)
		})
	}
	good := declared.Config{Name: "w", Input: `{"type":"object"}`, Steps: []declared.Step{
		{Name: "a", Tool: "t", Args: map[string]any{"id": "{{input.id}}", "n": 3}},
		{Name: "b", URL: "https://x/{{steps.a.id}}", Method: "PUT", Body: map[string]any{"k": "{{ run.id }}"}},
		{Name: "c", Signal: "go", Wait: time.Minute, Default: map[string]any{"ok": true}},
		{Name: "d", Sleep: time.Second},
		{Name: "e", Agent: "x", Prompt: "{{steps.c.ok}}"},
	}}
	if ps := declared.Check(good, noEnv); len(ps) != 0 {
		t.Errorf("Check(good) = %v", ps)
	}
}
