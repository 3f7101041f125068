package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/agent"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
)

// TestModelFaults runs the agent stage on a real OpenAI-compatible model
// client against the fake server: a model that times out, answers 5xx,
// stalls mid-stream or streams garbage makes the stage say the apology
// (and report an error), and the next turn is answered as usual with the
// user's new message.
func TestModelFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault openaitest.Fault
		is    error // in the error frame's chain
	}{
		{name: "timeout", fault: openaitest.Fault{FirstByte: time.Minute}, is: openai.ErrTimeout},
		{name: "5xx", fault: openaitest.Fault{Status: 503}},
		{name: "stall mid-stream", fault: openaitest.Fault{StallAfter: 2}, is: agent.ErrStalled},
		{name: "garbage", fault: openaitest.Fault{Malformed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.New(t, openaitest.Config{Key: "sk-test", Reply: "It is sunny today."})
			srv.Push("/v1/chat/completions", tc.fault)
			m, err := openai.New(openai.Config{BaseURL: srv.URL, APIKey: "sk-test", Model: "gpt-4o-mini", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: m})
			// Only the stall case relies on the watchdog: the others must
			// fail by the model's own error first.
			stall := time.Minute
			if tc.is == agent.ErrStalled {
				stall = 500 * time.Millisecond
			}
			st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}, Apology: "Sorry about that.", StallTimeout: stall})
			if err != nil {
				t.Fatal(err)
			}
			// Each answer's text and errors, sent when it ends.
			type answer struct {
				text string
				errs []error
			}
			answers := make(chan answer, 4)
			var cur answer
			p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
				switch f := f.(type) {
				case *frame.LLMText:
					cur.text += f.Text
				case *frame.Error:
					cur.errs = append(cur.errs, f.Err)
				case *frame.LLMResponseEnd:
					answers <- cur
					cur = answer{}
				}
			}}, st)
			ctx := context.Background()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()

			p.Push(ctx, &frame.Transcript{Text: "what is the weather", Final: true})
			got := <-answers
			if strings.TrimSpace(got.text) != "Sorry about that." && !strings.HasSuffix(got.text, " Sorry about that.") {
				t.Errorf("failed answer said %q, want the apology", got.text)
			}
			if len(got.errs) != 1 || tc.is != nil && !errors.Is(got.errs[0], tc.is) {
				t.Errorf("errors %v, want one (%v)", got.errs, tc.is)
			}
			p.Push(ctx, &frame.Transcript{Text: "and tomorrow", Final: true})
			if got := <-answers; got.text != "It is sunny today." || len(got.errs) != 0 {
				t.Errorf("next answer %q %v", got.text, got.errs)
			}
			p.Push(ctx, &frame.End{})
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 2 || reqs[0].User != "what is the weather" || reqs[1].User != "and tomorrow" {
				t.Errorf("requests %+v", reqs)
			}
		})
	}
}
