package orchestration_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
	"github.com/voiced-dev/voiced/internal/orchestration"
)

func example(t *testing.T, name string) config.Config {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cfg, err := config.Load(filepath.Join(filepath.Dir(file), "..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func build(t *testing.T, cfg config.Config, extra map[string]agents.Tool) *orchestration.Result {
	t.Helper()
	tools := demo.Tools(func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	for k, v := range extra {
		tools[k] = v
	}
	res, err := orchestration.Build(cfg, orchestration.Options{Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// trace runs r and renders its events as lines "agent kind detail".
func trace(t *testing.T, r agents.Runnable, text string) (lines []string, answer string) {
	t.Helper()
	var b strings.Builder
	for ev, err := range r.Run(context.Background(), agents.UserInput(text)) {
		if err != nil {
			t.Fatalf("%s: %v", r.Name(), err)
		}
		switch ev.Kind {
		case agents.EventText:
			b.WriteString(ev.Text)
		case agents.EventHandoff:
			lines = append(lines, fmt.Sprintf("%s handoff %s>%s", ev.Agent, ev.Handoff.From, ev.Handoff.To))
		case agents.EventToolCall:
			lines = append(lines, fmt.Sprintf("%s tool %s %s", ev.Agent, ev.ToolCall.Name, ev.ToolCall.Arguments))
		case agents.EventToolResult:
			lines = append(lines, fmt.Sprintf("%s result %s", ev.Agent, ev.ToolResult.Content))
		}
	}
	return lines, b.String()
}

func agentNamed(t *testing.T, res *orchestration.Result, name string) agents.Runnable {
	for _, a := range res.Agents {
		if a.Name() == name {
			return a
		}
	}
	t.Fatalf("no agent %q in %v", name, res.Agents)
	return nil
}

func TestCustomerSupportExample(t *testing.T) {
	res := build(t, example(t, "customer-support.toml"), nil)
	if res.Mode != "handoff" || res.Entry != "triage" || len(res.Agents) != 3 || res.Voices["billing"] != "awb" {
		t.Fatalf("result %+v", res)
	}
	lines, answer := trace(t, agentNamed(t, res, "triage"), "I was charged twice on my invoice")
	want := []string{
		"triage handoff triage>billing",
		`billing tool lookup_invoice {"invoice_id": "1001"}`,
		"billing result Invoice 1001: 49 dollars for the Pro plan, charged twice on March 3rd; the duplicate charge is refundable.",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(answer, "I found it. Invoice 1001") || !strings.Contains(answer, "refund") {
		t.Fatalf("answer %q", answer)
	}
	// Billing hands back to triage when the caller is done.
	lines, answer = trace(t, agentNamed(t, res, "billing"), "no that's all, thanks")
	if len(lines) != 1 || lines[0] != "billing handoff billing>triage" || !strings.Contains(answer, "goodbye") {
		t.Fatalf("hand back: %v %q", lines, answer)
	}
}

func TestSupervisorExample(t *testing.T) {
	res := build(t, example(t, "supervisor.toml"), nil)
	if len(res.Agents) != 1 || res.Entry != "supervisor" {
		t.Fatalf("result %+v", res)
	}
	lines, answer := trace(t, res.Agents[0], "what is the weather in Paris and the time in Tokyo")
	for _, want := range []string{`weather tool get_weather {"city": "Paris"}`, `clock tool get_time {"city": "Tokyo"}`} {
		found := false
		for _, l := range lines {
			found = found || l == want
		}
		if !found {
			t.Errorf("no %q in %v", want, lines)
		}
	}
	if want := "In Paris it is sunny and 21 degrees. It is 9:00 PM in Tokyo."; answer != want {
		t.Fatalf("answer %q, want %q", answer, want)
	}
}

const modes = `
[llm.scripted]
fallback = "fallback"
  [[llm.scripted.rules]]
  match = 'which route'
  reply = "b"
  [[llm.scripted.rules]]
  match = '(?s)Results:'
  reply = "combined"

[[agents]]
name = "a"
role = "first"
  [[agents.rules]]
  match = '.*'
  reply = "A"
[[agents]]
name = "b"
role = "second"
  [[agents.rules]]
  match = '.*'
  reply = "B"
[[agents]]
name = "c"
enabled = false
`

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		orch, want string
	}{
		{`mode = "sequential"`, "B"},
		{`mode = "collaborative"`, "combined"},
		{"mode = \"collaborative\"\nsynthesize = false", "A\n\nB"},
		{"mode = \"loop\"\nagents = [\"a\"]\nmax_iterations = 2", "A"},
		{"mode = \"mixed\"\nstages = [[\"a\", \"b\"], [\"a\"]]\nsynthesize = false", "A"},
		{`mode = "route"`, "B"}, // the router model answers "b"
	} {
		t.Run(tc.orch, func(t *testing.T) {
			cfg, err := config.Parse([]byte(modes + "\n[orchestration]\n" + tc.orch + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			res := build(t, cfg, nil)
			if len(res.Agents) != 1 {
				t.Fatalf("%d hosted agents", len(res.Agents))
			}
			answer, err := agents.Collect(context.Background(), res.Agents[0], agents.UserInput("which route"))
			if err != nil {
				t.Fatal(err)
			}
			if answer != tc.want {
				t.Fatalf("answer %q, want %q", answer, tc.want)
			}
		})
	}
}

func TestHandoffModeSkipsDisabledAgents(t *testing.T) {
	cfg, err := config.Parse([]byte(modes))
	if err != nil {
		t.Fatal(err)
	}
	res := build(t, cfg, nil)
	if res.Mode != "handoff" || len(res.Agents) != 2 || res.Entry != "a" {
		t.Fatalf("result %+v", res)
	}
}

func TestTimeout(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[llm.scripted]
fallback = "slow answer"
first_token_delay = "10s"
[orchestration]
timeout = "50ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	res := build(t, cfg, nil)
	_, err = agents.Collect(context.Background(), res.Agents[0], agents.UserInput("hi"))
	if !errors.Is(err, orchestration.ErrAnswerTimeout) {
		t.Fatalf("Collect = %v, want ErrAnswerTimeout", err)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"[[agents]]\nname = \"a\"\ntools = [\"nope\"]\n", "unknown tool"},
		{"[[agents]]\nname = \"a\"\nenabled = false\n", "no enabled agent"},
		{"[[agents]]\nname = \"a\"\n[[agents]]\nname = \"b\"\nenabled = false\n[orchestration]\nmode = \"sequential\"\nagents = [\"a\", \"b\"]\n", "not enabled"},
	} {
		cfg, err := config.Parse([]byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = orchestration.Build(cfg, orchestration.Options{Tools: demo.Tools(nil)})
		if !errors.Is(err, orchestration.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build = %v, want ErrConfig mentioning %q", err, tc.want)
		}
	}
}

// The modes and model providers are tables: an unknown name is an error
// that lists the known ones.
func TestUnknownNamesListTheKnown(t *testing.T) {
	if got := strings.Join(orchestration.Modes(), ","); got != "collaborative,graph,handoff,loop,mixed,planner,route,sequential,supervisor" {
		t.Fatalf("Modes = %s", got)
	}
	if got := strings.Join(orchestration.ModelProviders(), ","); got != "openai,scripted" {
		t.Fatalf("ModelProviders = %s", got)
	}
	for _, tc := range []struct{ file, want string }{
		{"[[agents]]\nname = \"a\"\n[orchestration]\nmode = \"committee\"\n", `unknown mode "committee" (known: collaborative, graph, handoff, loop, mixed, planner, route, sequential, supervisor)`},
		{"[llm]\nprovider = \"claude\"\n", `unknown provider "claude" (known: openai, scripted)`},
		{"[[models]]\nname = \"m\"\nprovider = \"gemini\"\n", `model "m": unknown provider "gemini"`},
	} {
		cfg, err := config.Parse([]byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = orchestration.Build(cfg, orchestration.Options{Tools: demo.Tools(nil)})
		if !errors.Is(err, orchestration.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build = %v, want ErrConfig mentioning %q", err, tc.want)
		}
	}
}

// The openai row reads the key from the variable api_key_env names and
// refuses an empty one.
func TestOpenAIKeyFromEnvironment(t *testing.T) {
	cfg, err := config.Parse([]byte("[llm]\nprovider = \"openai\"\n[llm.openai]\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"VOICED_TEST_KEY\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VOICED_TEST_KEY", "")
	if _, err := orchestration.Build(cfg, orchestration.Options{}); !errors.Is(err, orchestration.ErrConfig) || !strings.Contains(err.Error(), "VOICED_TEST_KEY is empty") {
		t.Fatalf("Build with an empty key = %v", err)
	}
	t.Setenv("VOICED_TEST_KEY", "k")
	if _, err := orchestration.Build(cfg, orchestration.Options{}); err != nil {
		t.Fatalf("Build with a key = %v", err)
	}
}
