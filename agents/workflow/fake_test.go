package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

// fake is a Runnable that records its inputs, reports its lifecycle like an
// LLM agent would, makes one tool call and streams its reply word by word.
type fake struct {
	name  string
	reply func(in agents.Input) (string, error)
	// wait, if set, runs before the reply (a barrier, a block until
	// cancelled).
	wait func(ctx context.Context) error

	mu     sync.Mutex
	inputs []agents.Input
}

func echo(name string) *fake {
	return &fake{name: name, reply: func(in agents.Input) (string, error) {
		return name + " on " + in.Text(), nil
	}}
}

func fixed(name, out string) *fake {
	return &fake{name: name, reply: func(agents.Input) (string, error) { return out, nil }}
}

func failing(name string, err error) *fake {
	return &fake{name: name, reply: func(agents.Input) (string, error) { return "", err }}
}

func (f *fake) Name() string { return f.name }

func (f *fake) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		f.mu.Lock()
		f.inputs = append(f.inputs, in)
		f.mu.Unlock()
		if !yield(agents.AgentEvent{Agent: f.name, Kind: agents.EventAgentStarted}, nil) {
			return
		}
		if f.wait != nil {
			if err := f.wait(ctx); err != nil {
				yield(agents.AgentEvent{}, err)
				return
			}
		}
		out, err := f.reply(in)
		if err != nil {
			yield(agents.AgentEvent{}, err)
			return
		}
		if !yield(agents.AgentEvent{Agent: f.name, Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "1", Name: "lookup"}}, nil) {
			return
		}
		for _, w := range strings.SplitAfter(out, " ") {
			if ctx.Err() != nil {
				yield(agents.AgentEvent{}, context.Cause(ctx))
				return
			}
			if !yield(agents.AgentEvent{Agent: f.name, Kind: agents.EventText, Text: w}, nil) {
				return
			}
		}
		yield(agents.AgentEvent{Agent: f.name, Kind: agents.EventAgentFinished, Text: "own finished event"}, nil)
	}
}

func (f *fake) calls() []agents.Input {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agents.Input(nil), f.inputs...)
}

// barrier blocks each of n callers until all n have arrived: members that
// wait on one can only finish if they run concurrently (under synctest a
// sequential run is reported as a deadlock).
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// blockUntilCancelled is a wait that never ends by itself.
func blockUntilCancelled(ctx context.Context) error {
	<-ctx.Done()
	return context.Cause(ctx)
}

// result is what a run produced.
type result struct {
	events []string // summarized, consecutive text of one agent merged
	answer string   // agents.Collect's view: all EventText
	err    error
}

func run(r agents.Runnable, in agents.Input) result {
	var res result
	var text strings.Builder
	for ev, err := range r.Run(context.Background(), in) {
		if err != nil {
			res.err = err
			break
		}
		res.events = appendEvent(res.events, ev)
		if ev.Kind == agents.EventText {
			text.WriteString(ev.Text)
		}
	}
	res.answer = text.String()
	return res
}

func appendEvent(evs []string, ev agents.AgentEvent) []string {
	switch ev.Kind {
	case agents.EventText:
		prefix := "text " + ev.Agent + ": "
		if n := len(evs); n > 0 && strings.HasPrefix(evs[n-1], prefix) {
			evs[n-1] += ev.Text
			return evs
		}
		return append(evs, prefix+ev.Text)
	case agents.EventAgentFinished:
		return append(evs, fmt.Sprintf("finished %s: %s", ev.Agent, ev.Text))
	case agents.EventHandoff:
		return append(evs, fmt.Sprintf("handoff %s -> %s", ev.Handoff.From, ev.Handoff.To))
	case agents.EventToolCall:
		return append(evs, fmt.Sprintf("tool_call %s: %s", ev.Agent, ev.ToolCall.Name))
	}
	return append(evs, ev.Kind.String()+" "+ev.Agent)
}

func msgs(in agents.Input) []string {
	var out []string
	for _, m := range in.Messages {
		s := string(m.Role)
		if m.Name != "" {
			s += "(" + m.Name + ")"
		}
		out = append(out, s+": "+m.Content)
	}
	return out
}

func model(t *testing.T, fallback string, rules ...string) agents.ChatModel {
	t.Helper()
	cfg := scripted.Config{Fallback: fallback}
	for i := 0; i+1 < len(rules); i += 2 {
		cfg.Rules = append(cfg.Rules, scripted.Rule{Match: rules[i], Reply: rules[i+1]})
	}
	m, err := scripted.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recordingModel records the requests a model is sent.
type recordingModel struct {
	agents.ChatModel
	mu   sync.Mutex
	reqs []agents.Request
}

func (m *recordingModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	m.mu.Unlock()
	return m.ChatModel.Stream(ctx, req)
}

func (m *recordingModel) requests() []agents.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]agents.Request(nil), m.reqs...)
}

func must(t *testing.T) func(agents.Runnable, error) agents.Runnable {
	return func(r agents.Runnable, err error) agents.Runnable {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

var errBoom = errors.New("boom")
