package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/agent"
)

// fakeModel answers from a list, one word per 100 ms, and records requests.
type fakeModel struct {
	mu      sync.Mutex
	answers []string
	reqs    []agents.Request
	causes  []error
}

func (m *fakeModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		m.mu.Lock()
		m.reqs = append(m.reqs, req)
		answer := m.answers[0]
		m.answers = m.answers[1:]
		m.mu.Unlock()
		for _, w := range strings.SplitAfter(answer, " ") {
			select {
			case <-ctx.Done():
				m.mu.Lock()
				m.causes = append(m.causes, context.Cause(ctx))
				m.mu.Unlock()
				yield(agents.Event{}, context.Cause(ctx))
				return
			case <-time.After(100 * time.Millisecond):
			}
			if !yield(agents.Event{Text: w}, nil) {
				return
			}
		}
	}
}

// speaker stands in for TTS and playout: it reports each sentence as spoken
// (upstream) 50 ms after its last word arrives, unless interrupted. It
// speaks nothing of a TextOnly answer.
type speaker struct {
	rt     pipeline.Runtime
	out    pipeline.Emitter
	buf    strings.Builder
	mu     sync.Mutex
	text   []string
	silent bool
}

func (s *speaker) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.rt, s.out = rt, out
	return nil
}

func (s *speaker) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	if st, ok := f.(*frame.LLMResponseStart); ok {
		s.silent = st.TextOnly
	}
	if l, ok := f.(*frame.LLMText); ok && !s.silent {
		s.buf.WriteString(l.Text)
		if strings.HasSuffix(strings.TrimSpace(l.Text), ".") {
			s.mu.Lock()
			s.text = append(s.text, strings.TrimSpace(s.buf.String()))
			s.mu.Unlock()
			s.buf.Reset()
			turn := l.Turn
			// Timers due at the same time fire in any order: each plays
			// the oldest sentence, so they are reported in order.
			time.AfterFunc(50*time.Millisecond, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				sentence := s.text[0]
				s.text = s.text[1:]
				if s.rt.Turn() == turn {
					s.out.EmitUp(&frame.BotSpoke{Meta: frame.Meta{Turn: turn}, Text: sentence})
				}
			})
		}
	}
	if _, ok := f.(*frame.Interruption); ok {
		s.buf.Reset()
	}
	out.Pass(f)
	return nil
}

// interrupter interrupts on a transcript "STOP" (like the VAD does on speech).
type interrupter struct{ rt pipeline.Runtime }

func (i *interrupter) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	i.rt = rt
	return nil
}

func (i *interrupter) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if t, ok := f.(*frame.Transcript); ok && t.Text == "STOP" {
		i.rt.Interrupt("test")
		out.Emit(&frame.Interruption{})
		return nil
	}
	out.Pass(f)
	return nil
}

func TestStageRecordsOnlyWhatWasSpoken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		model := &fakeModel{answers: []string{
			"First sentence here. Second one is long and will be cut.",
			"Okay.",
		}}
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Instructions: "be brief", Model: model})
		if err != nil {
			t.Fatal(err)
		}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var texts []string
		sink := func(f frame.Frame) {
			if l, ok := f.(*frame.LLMText); ok {
				mu.Lock()
				texts = append(texts, l.Text)
				mu.Unlock()
			}
		}
		p := pipeline.New(pipeline.Options{Sink: sink}, &interrupter{}, st, &speaker{})
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()

		p.Push(ctx, &frame.Transcript{Text: "partial", Final: false})
		p.Push(ctx, &frame.Transcript{Text: "tell me things", Final: true})
		// Words every 100 ms: "First sentence here." ends at 300 ms and is
		// spoken at 350 ms; we interrupt at 650 ms, mid second sentence
		// (between the words at 600 and 700 ms).
		time.Sleep(650 * time.Millisecond)
		p.Push(ctx, &frame.Transcript{Text: "STOP"})
		synctest.Wait()
		p.Push(ctx, &frame.Transcript{Text: "and now", Final: true})
		time.Sleep(time.Second)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		h := st.History()
		want := []agents.Message{
			{Role: agents.RoleUser, Content: "tell me things"},
			{Role: agents.RoleAssistant, Content: "First sentence here.", Interrupted: true},
			{Role: agents.RoleUser, Content: "and now"},
			{Role: agents.RoleAssistant, Content: "Okay."},
		}
		if len(h) != len(want) {
			t.Fatalf("history = %+v, want %+v", h, want)
		}
		for i := range want {
			if h[i].Role != want[i].Role || h[i].Content != want[i].Content || h[i].Interrupted != want[i].Interrupted {
				t.Fatalf("history[%d] = %+v, want %+v", i, h[i], want[i])
			}
		}
		// The second request carried what was heard, and the system prompt.
		if len(model.reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(model.reqs))
		}
		r := model.reqs[1]
		if r.System != "be brief" || len(r.Messages) != 3 || r.Messages[1].Content != "First sentence here." || r.Messages[2].Content != "and now" {
			t.Fatalf("second request = %+v", r)
		}
		if len(model.causes) != 1 || !errors.Is(model.causes[0], pipeline.ErrInterrupted) {
			t.Fatalf("model cancellations = %v, want one ErrInterrupted", model.causes)
		}
		// Nothing of the interrupted answer after "Second one" reached the end.
		got := strings.Join(texts, "")
		if got != "First sentence here. Second one is Okay." {
			t.Fatalf("text out = %q", got)
		}
	})
}

func TestStageNeedsModel(t *testing.T) {
	if _, err := agent.New(agent.Config{}); err == nil {
		t.Fatal("New without a model succeeded")
	}
}

// scriptAgent is a Runnable that plays a fixed list of events and records
// the inputs and sessions it was run with.
type scriptAgent struct {
	name   string
	events []agents.AgentEvent
	mu     sync.Mutex
	inputs []agents.Input
	sess   []agents.SessionInfo
}

func (a *scriptAgent) Name() string { return a.name }

func (a *scriptAgent) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		info, _ := agents.SessionFromContext(ctx)
		a.mu.Lock()
		a.inputs = append(a.inputs, in)
		a.sess = append(a.sess, info)
		a.mu.Unlock()
		for _, ev := range a.events {
			if !yield(ev, nil) {
				return
			}
		}
	}
}

func TestStageHandoffSwitchesActiveAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		triage := &scriptAgent{name: "triage", events: []agents.AgentEvent{
			{Agent: "triage", Kind: agents.EventText, Text: "Let me get billing. "},
			{Agent: "triage", Kind: agents.EventHandoff, Handoff: &agents.Handoff{From: "triage", To: "billing"}},
			{Agent: "billing", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c1", Name: "lookup_invoice", Arguments: `{"id":"42"}`}},
			{Agent: "billing", Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: "c1", Name: "lookup_invoice", Content: "paid"}},
			{Agent: "billing", Kind: agents.EventText, Text: "Invoice 42 is paid."},
		}}
		billing := &scriptAgent{name: "billing", events: []agents.AgentEvent{{Agent: "billing", Kind: agents.EventText, Text: "Anything else?"}}}
		st, err := agent.New(agent.Config{
			Agents:    []agents.Runnable{triage, billing},
			Voices:    map[string]string{"billing": "awb"},
			SessionID: "s1",
			Start:     json.RawMessage(`{"user":"ada"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		var rec pipelinetest.Recorder
		p := pipeline.New(pipeline.Options{Sink: rec.Sink}, st)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "I was charged twice", Final: true})
		synctest.Wait()
		if st.Active() != "billing" {
			t.Fatalf("active agent %q after the handoff, want billing", st.Active())
		}
		p.Push(ctx, &frame.Transcript{Text: "thanks", Final: true})
		synctest.Wait()
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := "RS L(Let me get billing. ) H(triage>billing) Tool(lookup_invoice) Result(lookup_invoice) L(Invoice 42 is paid.) RE RS L(Anything else?) RE End"
		if got := rec.Golden(); got != want {
			t.Fatalf("frames out =\n %q\nwant\n %q", got, want)
		}
		for _, f := range rec.Frames() {
			switch f := f.(type) {
			case *frame.Handoff:
				if f.From != "triage" || f.To != "billing" || f.Voice != "awb" {
					t.Errorf("handoff frame %+v", f)
				}
			case *frame.ToolCall:
				if f.Name != "lookup_invoice" || f.Agent != "billing" || f.Arguments != `{"id":"42"}` {
					t.Errorf("tool call frame %+v", f)
				}
			}
		}
		if len(billing.inputs) != 1 || billing.inputs[0].Text() != "thanks" || len(triage.inputs) != 1 {
			t.Fatalf("triage ran %d times, billing %d (%+v)", len(triage.inputs), len(billing.inputs), billing.inputs)
		}
		if triage.sess[0].ID != "s1" || triage.sess[0].Say == nil || triage.sess[0].Done == nil || string(triage.sess[0].Start) != `{"user":"ada"}` {
			t.Fatalf("agent's session info %+v", triage.sess[0])
		}
		select {
		case <-triage.sess[0].Done:
		default:
			t.Error("SessionInfo.Done still open after the session ended")
		}
	})
}

func TestStageSay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &scriptAgent{name: "a"}
		st, _ := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		var rec pipelinetest.Recorder
		p := pipeline.New(pipeline.Options{Sink: rec.Sink}, st)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		st.Say("Your return is approved.")
		synctest.Wait()
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Golden(), "RS L(Your return is approved.) RE End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
	})
}

func TestStageEntry(t *testing.T) {
	a, b := &scriptAgent{name: "a"}, &scriptAgent{name: "b"}
	st, err := agent.New(agent.Config{Agents: []agents.Runnable{a, b}, Entry: "b"})
	if err != nil || st.Active() != "b" {
		t.Fatalf("New = %v, active %q", err, st.Active())
	}
	if _, err := agent.New(agent.Config{Agents: []agents.Runnable{a}, Entry: "zed"}); !errors.Is(err, agent.ErrNoAgent) {
		t.Fatalf("unknown entry: %v", err)
	}
}

// TestStageBreaksTextBeforeToolCall: text that a tool call follows is
// ended with a line break, so that the sentence splitters say it before
// the tool runs; text that ends in whitespace needs none.
func TestStageBreaksTextBeforeToolCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &scriptAgent{name: "desk", events: []agents.AgentEvent{
			{Agent: "desk", Kind: agents.EventText, Text: "Transferring you now."},
			{Agent: "desk", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c1", Name: "transfer_call", Arguments: `{"target":"sales"}`}},
			{Agent: "desk", Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: "c1", Name: "transfer_call", Content: "ok"}},
			{Agent: "desk", Kind: agents.EventText, Text: "One more. "},
			{Agent: "desk", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c2", Name: "end_call", Arguments: `{}`}},
			{Agent: "desk", Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: "c2", Name: "end_call", Content: "ok"}},
		}}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		if err != nil {
			t.Fatal(err)
		}
		var rec pipelinetest.Recorder
		p := pipeline.New(pipeline.Options{Sink: rec.Sink}, st)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "sales please", Final: true})
		synctest.Wait()
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := "RS L(Transferring you now.) L(\n) Tool(transfer_call) Result(transfer_call) L(One more. ) Tool(end_call) Result(end_call) RE End"
		if got := rec.Golden(); got != want {
			t.Fatalf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}
