package agent_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/agent"
)

// slowLookup takes 3 s and has a filler said after 1 s.
type slowLookup struct{}

func (slowLookup) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: "lookup", Parameters: json.RawMessage(`{"type":"object"}`)}
}
func (slowLookup) Call(ctx context.Context, _ json.RawMessage) (string, error) {
	select {
	case <-time.After(3 * time.Second):
		return "found", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}
func (slowLookup) Filler() (string, time.Duration) { return "One moment please.", time.Second }

// TestStageSpeaksFillerOfSlowTool: the filler of a slow tool leaves the
// agent stage as LLMText (what TTS speaks) between the tool call and its
// result, in the answer's turn, and is recorded as spoken.
func TestStageSpeaksFillerOfSlowTool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		step := 0
		model := agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
			step++
			n := step
			return func(yield func(agents.Event, error) bool) {
				if n == 1 {
					yield(agents.Event{ToolCall: &agents.ToolCall{ID: "c1", Name: "lookup", Arguments: "{}"}}, nil)
					return
				}
				yield(agents.Event{Text: "It is found."}, nil)
			}
		})
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Tools: []agents.Tool{slowLookup{}}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen []string
		start := time.Now()
		sink := func(f frame.Frame) {
			mu.Lock()
			defer mu.Unlock()
			at := time.Since(start).Round(time.Millisecond)
			switch f := f.(type) {
			case *frame.LLMText:
				seen = append(seen, at.String()+" text "+strings.TrimSpace(f.Text))
			case *frame.ToolCall:
				seen = append(seen, at.String()+" call "+f.Name)
			case *frame.ToolResult:
				seen = append(seen, at.String()+" result "+f.Name)
			}
		}
		p := pipeline.New(pipeline.Options{Sink: sink}, st, &speaker{})
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "look it up", Final: true})
		time.Sleep(5 * time.Second)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []string{"0s call lookup", "1s text One moment please.", "3s result lookup", "3s text It is found."}
		if strings.Join(seen, "\n") != strings.Join(want, "\n") {
			t.Fatalf("frames:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
		}
		var spoken []string
		for _, m := range st.History() {
			if m.Role == agents.RoleAssistant && m.Content != "" {
				spoken = append(spoken, m.Content)
			}
		}
		if got := strings.Join(spoken, " | "); !strings.Contains(got, "One moment please.") || !strings.Contains(got, "It is found.") {
			t.Errorf("history's spoken text %q", got)
		}
	})
}
