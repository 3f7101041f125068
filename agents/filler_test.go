package agents_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// slowTool sleeps for d (fake time) and has a filler.
type slowTool struct {
	name   string
	d      time.Duration
	filler string
	delay  time.Duration
}

func (s slowTool) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: s.name, Parameters: json.RawMessage(`{"type":"object"}`)}
}
func (s slowTool) Call(ctx context.Context, _ json.RawMessage) (string, error) {
	select {
	case <-time.After(s.d):
		return s.name + " done", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}
func (s slowTool) Filler() (string, time.Duration) { return s.filler, s.delay }

func TestAgentSaysFillerForSlowTool(t *testing.T) {
	for _, c := range []struct {
		name string
		d    time.Duration
		want []string
	}{
		{"slow", 3 * time.Second, []string{
			"a agent_started",
			"a text Let me check.",
			"a tool_call lookup {}",
			"a text  One moment please.",
			"a tool_result lookup = lookup done",
			"a text  Found it.",
			"a agent_finished",
		}},
		{"fast", 500 * time.Millisecond, []string{
			"a agent_started",
			"a text Let me check.",
			"a tool_call lookup {}",
			"a tool_result lookup = lookup done",
			"a text  Found it.",
			"a agent_finished",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				newAgent := func() *agents.LLMAgent {
					a, err := agents.NewLLMAgent(agents.LLMAgentConfig{
						Name: "a",
						Model: stepsModel(
							[]agents.Event{{Text: "Let me check."}, callEv("1", "lookup", "{}")},
							[]agents.Event{{Text: "Found it."}},
						),
						Tools: []agents.Tool{slowTool{name: "lookup", d: c.d, filler: "One moment please.", delay: time.Second}},
					})
					if err != nil {
						t.Fatal(err)
					}
					return a
				}
				var texts []string
				for ev, err := range newAgent().Run(context.Background(), agents.UserInput("go")) {
					if err != nil {
						t.Fatal(err)
					}
					if ev.Kind == agents.EventText {
						texts = append(texts, ev.Text)
					}
				}
				lines, err := trace(context.Background(), newAgent(), agents.UserInput("go"))
				if err != nil {
					t.Fatal(err)
				}
				checkLines(t, lines, c.want)
				// The filler and the next step's text are spaced from what
				// came before them, so sentences do not run together.
				for _, tx := range texts[1:] {
					if tx[0] != ' ' {
						t.Errorf("text %q not spaced from the one before", tx)
					}
				}
			})
		})
	}
}

func TestAgentFillerNotSaidAfterBargeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{
			Name:  "a",
			Model: stepsModel([]agents.Event{callEv("1", "lookup", "{}")}, []agents.Event{{Text: "x"}}),
			Tools: []agents.Tool{slowTool{name: "lookup", d: time.Hour, filler: "One moment.", delay: time.Second}},
		})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		for ev, err := range a.Run(ctx, agents.UserInput("go")) {
			if ev.Kind == agents.EventText {
				t.Errorf("text after barge-in: %q", ev.Text)
			}
			if err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
		}
	})
}

// toolset is a Toolset whose tools a test changes.
type toolset struct {
	mu    sync.Mutex
	tools []agents.Tool
}

func (s *toolset) Tools() []agents.Tool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools
}

func TestAgentToolsetChangesBetweenSteps(t *testing.T) {
	ts := &toolset{}
	echo := agents.MustTool("echo", "", func(_ context.Context, a struct {
		S string `json:"s"`
	}) (string, error) {
		return a.S, nil
	})
	ownClash := agents.MustTool("own", "", func(context.Context, struct{}) (string, error) { return "theirs", nil })
	// "own" installs the toolset's tools: the next step has them.
	own := agents.MustTool("own", "", func(context.Context, struct{}) (string, error) {
		ts.mu.Lock()
		ts.tools = []agents.Tool{echo, ownClash}
		ts.mu.Unlock()
		return "mine", nil
	})
	rec := &recorder{m: stepsModel(
		[]agents.Event{callEv("1", "echo", `{"s":"hi"}`)},
		[]agents.Event{callEv("2", "own", `{}`)},
		[]agents.Event{callEv("3", "echo", `{"s":"again"}`)},
		[]agents.Event{{Text: "ok"}},
	)}
	a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: rec, Tools: []agents.Tool{own}, Toolsets: []agents.Toolset{ts}})
	lines, err := trace(context.Background(), a, agents.UserInput("go"))
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []string{
		"a agent_started",
		`a tool_call echo {"s":"hi"}`,
		`a tool_result echo = error: unknown tool "echo"`,
		"a tool_call own {}",
		"a tool_result own = mine",
		`a tool_call echo {"s":"again"}`,
		"a tool_result echo = again",
		"a text ok",
		"a agent_finished",
	})
	reqs := rec.requests()
	if n := len(reqs[0].Tools); n != 1 {
		t.Errorf("first request offered %d tools, want 1 (own)", n)
	}
	last := reqs[len(reqs)-1].Tools
	if len(last) != 2 || last[0].Name != "own" || last[1].Name != "echo" {
		t.Errorf("last request offered %v, want own, echo", last)
	}
}
