package orchestration_test

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
	"github.com/voiced-dev/voiced/internal/orchestration"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/agent"
)

// request is one model request, as a model saw it.
type request struct {
	system   string
	messages []agents.Message
	tools    []string
}

// requests records every model request of a Result.
type requests struct {
	mu  sync.Mutex
	all []request
}

func (r *requests) wrap(m agents.ChatModel) agents.ChatModel {
	return agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
		rq := request{system: req.System, messages: slices.Clone(req.Messages)}
		for _, t := range req.Tools {
			rq.tools = append(rq.tools, t.Name)
		}
		r.mu.Lock()
		r.all = append(r.all, rq)
		r.mu.Unlock()
		return m.Stream(ctx, req)
	})
}

// of returns the requests whose system prompt starts with prefix.
func (r *requests) of(prefix string) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []request
	for _, q := range r.all {
		if strings.HasPrefix(q.system, prefix) {
			out = append(out, q)
		}
	}
	return out
}

// buildExample loads an example with the loader serve uses and builds its
// orchestration with the demo tools (extra replaces some), recording the
// model requests.
func buildExample(t *testing.T, name string, extra map[string]agents.Tool) (*orchestration.Result, *requests) {
	t.Helper()
	cfg := example(t, name)
	tools := demo.Tools(func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	for k, v := range extra {
		tools[k] = v
	}
	reqs := &requests{}
	res, err := orchestration.Build(cfg, orchestration.Options{Tools: tools, WrapModel: reqs.wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return res, reqs
}

var _ = config.Load // the examples are read with config.Load, as serve reads them

// answer is what one answer of the agent stage sent downstream.
type answer struct {
	text     string
	handoffs []string // "from>to"
	tools    []string // "agent name arguments"
}

// call is one conversation through the agent stage, as a session runs it:
// final transcripts go in, each answer comes out, and a speaker reports
// every answer as played in full (BotSpoke upstream), as the playout does.
type call struct {
	t       *testing.T
	stage   *agent.Processor
	p       *pipeline.Pipeline
	answers chan answer
	done    chan error
}

func newCall(t *testing.T, res *orchestration.Result, metadata map[string]string) *call {
	t.Helper()
	st, err := agent.New(agent.Config{Agents: res.Agents, Entry: res.Entry, Voices: res.Voices, SessionID: "s1", Metadata: metadata})
	if err != nil {
		t.Fatal(err)
	}
	c := &call{t: t, stage: st, answers: make(chan answer, 16), done: make(chan error, 1)}
	pending := make(chan answer, 16)
	c.p = pipeline.New(pipeline.Options{}, &head{pending: pending, answers: c.answers}, st, &speaker{answers: pending})
	go func() { c.done <- c.p.Run(context.Background()) }()
	t.Cleanup(c.end)
	return c
}

// say sends a final transcript and returns the answer to it.
func (c *call) say(text string) answer {
	c.t.Helper()
	if err := c.p.Push(context.Background(), &frame.Transcript{Text: text, Final: true}); err != nil {
		c.t.Fatal(err)
	}
	return c.next()
}

// next returns the next answer (one the agents said on their own).
func (c *call) next() answer {
	c.t.Helper()
	select {
	case a := <-c.answers:
		return a
	case <-time.After(20 * time.Second): // a deadlock guard, not a timing assertion
		c.t.Fatal("no answer")
		return answer{}
	}
}

func (c *call) end() {
	if c.p == nil {
		return
	}
	c.p.Push(context.Background(), &frame.End{})
	if err := <-c.done; err != nil {
		c.t.Errorf("pipeline: %v", err)
	}
	c.p = nil
}

// head is the first stage: it hands out each answer once the agent stage
// has taken the report that it was played. Upstream frames travel in one
// lane, in order: when the speaker's BotStoppedSpeaking, sent after its
// BotSpoke, reaches head, the agent stage has recorded the BotSpoke, and
// the next transcript finds the answer in the history.
type head struct {
	pending <-chan answer
	answers chan<- answer
}

func (h *head) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if _, ok := f.(*frame.BotStoppedSpeaking); ok {
		h.answers <- <-h.pending
		return nil
	}
	out.Pass(f)
	return nil
}

// speaker collects each answer and reports it as played.
type speaker struct {
	answers chan<- answer
	cur     answer
	text    strings.Builder
}

func (s *speaker) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.LLMText:
		s.text.WriteString(f.Text)
	case *frame.Handoff:
		s.cur.handoffs = append(s.cur.handoffs, f.From+">"+f.To)
	case *frame.ToolCall:
		s.cur.tools = append(s.cur.tools, f.Agent+" "+f.Name+" "+f.Arguments)
	case *frame.LLMResponseEnd:
		// As spoken: the agent stage ends the sentence before a tool
		// call with a line break.
		s.cur.text = strings.Join(strings.Fields(s.text.String()), " ")
		if s.cur.text != "" {
			out.EmitUp(&frame.BotSpoke{Meta: frame.Meta{Turn: f.Turn}, Text: s.cur.text})
		}
		s.answers <- s.cur
		out.EmitUp(&frame.BotStoppedSpeaking{})
		// Tool calls are system frames, which may overtake the answer's
		// start: an answer's collection starts after the previous end.
		s.cur, s.text = answer{}, strings.Builder{}
	}
	out.Pass(f)
	return nil
}
