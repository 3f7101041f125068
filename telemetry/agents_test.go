package telemetry

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// fakeModel streams events, then err (if set); if block is set it first
// waits for ctx to be cancelled and ends with ctx's error. It records the
// span context it was called under.
type fakeModel struct {
	events []agents.Event
	err    error
	block  bool
	called *[]trace.SpanContext
}

func (m fakeModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		if m.called != nil {
			*m.called = append(*m.called, trace.SpanContextFromContext(ctx))
		}
		for _, ev := range m.events {
			if !yield(ev, nil) {
				return
			}
		}
		if m.block {
			<-ctx.Done()
			yield(agents.Event{}, ctx.Err())
			return
		}
		if m.err != nil {
			yield(agents.Event{}, m.err)
		}
	}
}

type namedModel struct{ fakeModel }

func (namedModel) Provider() string { return "openai" }
func (namedModel) Model() string    { return "gpt-test" }

func TestTraceModelStream(t *testing.T) {
	r := newRecorder(t)
	var called []trace.SpanContext
	temp := 0.25
	evs := []agents.Event{
		{Text: "Let me "},
		{Text: "check."},
		{ToolCall: &agents.ToolCall{ID: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}},
		{Usage: &agents.Usage{InputTokens: 120, OutputTokens: 14}, FinishReason: "tool_calls"},
	}
	m := r.TraceModel(namedModel{fakeModel{events: evs, called: &called}})
	if info, ok := m.(agents.ModelInfo); !ok || info.Provider() != "openai" || info.Model() != "gpt-test" {
		t.Fatalf("traced model lost ModelInfo: %#v", m)
	}
	var got []agents.Event
	for ev, err := range m.Stream(context.Background(), agents.Request{
		Messages:    []agents.Message{{Role: agents.RoleUser, Content: "weather?"}},
		MaxTokens:   256,
		Temperature: &temp,
	}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if len(got) != len(evs) || got[2].ToolCall != evs[2].ToolCall {
		t.Fatalf("events passed through = %+v, want %+v", got, evs)
	}

	spans := r.spans.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if len(called) != 1 || called[0].SpanID() != s.SpanContext.SpanID() {
		t.Errorf("model called under %v, want its span %v", called, s.SpanContext.SpanID())
	}
	if s.SpanKind != trace.SpanKindClient {
		t.Errorf("kind = %v, want client", s.SpanKind)
	}
	diffLines(t, r.dump(t, base, "voiced.time_to_first_token"), []string{
		"chat gpt-test gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.max_tokens=256 gen_ai.request.model=gpt-test gen_ai.request.temperature=0.25 gen_ai.response.finish_reasons=[\"tool_calls\"] gen_ai.system=openai gen_ai.usage.input_tokens=120 gen_ai.usage.output_tokens=14 voiced.request.messages=1 voiced.request.tools=0 voiced.response.tool_calls=1",
		"  event first_token",
		"  event gen_ai.tool.call gen_ai.tool.call.id=call_1 gen_ai.tool.name=weather",
	})
	var ttft float64 = -1
	for _, kv := range s.Attributes {
		if kv.Key == "voiced.time_to_first_token" {
			ttft = kv.Value.AsFloat64()
		}
	}
	if ttft < 0 {
		t.Error("no voiced.time_to_first_token")
	}

	mt := r.metrics(t)
	ab := "gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-test gen_ai.system=openai"
	for k, v := range map[string]float64{
		"gen_ai.client.operation.duration{" + ab + "}":                       1,
		"gen_ai.client.token.usage{" + ab + " gen_ai.token.type=input}.sum":  120,
		"gen_ai.client.token.usage{" + ab + " gen_ai.token.type=output}.sum": 14,
		"gen_ai.client.token.usage{" + ab + " gen_ai.token.type=output}":     1,
	} {
		if got, ok := mt[k]; !ok || got != v {
			t.Errorf("metric %s = %v (present %v), want %v; have %v", k, got, ok, v, mt)
		}
	}
}

func TestTraceModelErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		model  fakeModel
		cancel error // cause to cancel with once the first event is seen
		stop   bool  // the consumer stops after the first event
		want   []string
	}{
		{
			name:  "provider error",
			model: fakeModel{err: &agents.ProviderError{Provider: "openai", Op: "stream", Status: 429, Retryable: true, Err: errors.New("slow down")}},
			want: []string{
				"chat error.type=429 gen_ai.operation.name=chat voiced.request.messages=0 voiced.request.tools=0 voiced.response.tool_calls=0 voiced.retryable=true",
				"  event exception exception.message=openai: stream: status 429: slow down exception.type=*agents.ProviderError",
				"  status Error openai: stream: status 429: slow down",
			},
		},
		{
			name:   "barge-in",
			model:  fakeModel{events: []agents.Event{{Text: "Once"}}, block: true},
			cancel: pipeline.ErrInterrupted,
			want: []string{
				"chat gen_ai.operation.name=chat voiced.cancel.cause=pipeline: interrupted voiced.cancelled=true voiced.interrupted=true voiced.request.messages=0 voiced.request.tools=0 voiced.response.tool_calls=0",
				"  event first_token",
				"  event cancelled",
			},
		},
		{
			name:   "session cancelled",
			model:  fakeModel{events: []agents.Event{{Text: "Once"}}, block: true},
			cancel: context.Canceled,
			want: []string{
				"chat gen_ai.operation.name=chat voiced.cancel.cause=context canceled voiced.cancelled=true voiced.interrupted=false voiced.request.messages=0 voiced.request.tools=0 voiced.response.tool_calls=0",
				"  event first_token",
				"  event cancelled",
			},
		},
		{
			name:  "consumer stops",
			model: fakeModel{events: []agents.Event{{Text: "a"}, {Text: "b"}}},
			stop:  true,
			want: []string{
				"chat gen_ai.operation.name=chat voiced.request.messages=0 voiced.request.tools=0 voiced.response.tool_calls=0 voiced.stream.abandoned=true",
				"  event first_token",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var errs []error
			for ev, err := range r.TraceModel(tc.model).Stream(ctx, agents.Request{}) {
				if err != nil {
					errs = append(errs, err)
				}
				if ev.Text != "" && tc.cancel != nil {
					cancel(tc.cancel)
				}
				if tc.stop {
					break
				}
			}
			if tc.model.err != nil && (len(errs) != 1 || errs[0] != tc.model.err) {
				t.Errorf("errors passed through = %v, want %v", errs, tc.model.err)
			}
			diffLines(t, r.dump(t, base, "voiced.time_to_first_token"), tc.want)
		})
	}
}

// A model called under a session's context nests in the turn being
// answered.
func TestTraceModelInSession(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "s"})
	ctx := st.Context(context.Background())
	m := r.TraceModel(fakeModel{events: []agents.Event{{Text: "hi"}}})

	_ = consume(m.Stream(ctx, agents.Request{})) // before any turn: under the session
	st.OnHop(made(100, stSTT, &frame.Transcript{Meta: meta(1), Text: "hi", Final: true, Typed: true}))
	_ = consume(m.Stream(ctx, agents.Request{})) // in the turn
	st.OnHop(made(200, stAgent, &frame.LLMResponseStart{Meta: meta(1)}))
	_ = consume(m.Stream(ctx, agents.Request{})) // in its generation
	st.OnHop(made(300, stAgent, &frame.LLMResponseEnd{Meta: meta(1)}))
	st.End(nil)

	parents := map[trace.SpanID]string{}
	for _, s := range r.spans.GetSpans() {
		parents[s.SpanContext.SpanID()] = s.Name
	}
	var got []string
	for _, s := range r.spans.GetSpans() {
		if s.Name == "chat" {
			got = append(got, parents[s.Parent.SpanID()])
		}
	}
	diffLines(t, got, []string{SpanSession, SpanTurn, SpanLLM})
}

func consume[T any](seq iter.Seq2[T, error]) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

// fakeRunnable streams its events (and then err), calling model once under
// the run's context to check that model spans nest in the agent's.
type fakeRunnable struct {
	name   string
	events []agents.AgentEvent
	err    error
	model  agents.ChatModel
}

func (f fakeRunnable) Name() string { return f.name }

func (f fakeRunnable) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		if f.model != nil {
			if err := consume(f.model.Stream(ctx, agents.Request{Messages: in.Messages})); err != nil {
				yield(agents.AgentEvent{}, err)
				return
			}
		}
		for _, ev := range f.events {
			if !yield(ev, nil) {
				return
			}
		}
		if f.err != nil {
			yield(agents.AgentEvent{}, f.err)
		}
	}
}

func TestTraceRunnable(t *testing.T) {
	r := newRecorder(t)
	toolErr := errors.New("no such order")
	run := r.TraceRunnable(fakeRunnable{
		name:  "triage",
		model: r.TraceModel(fakeModel{events: []agents.Event{{Text: "ok"}}}),
		events: []agents.AgentEvent{
			{Agent: "triage", Kind: agents.EventAgentStarted},
			{Agent: "triage", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c1", Name: "lookup", Arguments: `{"id":7}`}},
			{Agent: "triage", Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: "c1", Name: "lookup", Content: "found"}},
			{Agent: "triage", Kind: agents.EventHandoff, Handoff: &agents.Handoff{From: "triage", To: "billing"}},
			{Agent: "billing", Kind: agents.EventAgentStarted},
			{Agent: "billing", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c2", Name: "refund", Arguments: `{}`}},
			{Agent: "billing", Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: "c2", Name: "refund", Content: "no such order", Err: toolErr}},
			{Agent: "billing", Kind: agents.EventText, Text: "Sorry, "},
			{Agent: "billing", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c3", Name: "escalate"}},
			{Agent: "billing", Kind: agents.EventText, Text: "no luck."},
			{Agent: "billing", Kind: agents.EventAgentFinished},
			{Agent: "triage", Kind: agents.EventAgentFinished},
		},
	})
	if run.Name() != "triage" {
		t.Fatalf("Name = %q", run.Name())
	}
	text, err := agents.Collect(context.Background(), run, agents.UserInput("refund order 7"))
	if err != nil || text != "Sorry, no luck." {
		t.Fatalf("Collect = %q, %v", text, err)
	}
	diffLines(t, sortedDump(t, r, "voiced.time_to_first_token"), []string{
		"chat <- invoke_agent triage gen_ai.operation.name=chat voiced.request.messages=1 voiced.request.tools=0 voiced.response.tool_calls=0",
		"  event first_token",
		"execute_tool escalate <- invoke_agent billing gen_ai.agent.name=billing gen_ai.operation.name=execute_tool gen_ai.tool.call.id=c3 gen_ai.tool.name=escalate voiced.cut=true voiced.tool.arguments_length=0",
		"execute_tool lookup <- invoke_agent triage gen_ai.agent.name=triage gen_ai.operation.name=execute_tool gen_ai.tool.call.id=c1 gen_ai.tool.name=lookup voiced.tool.arguments_length=8 voiced.tool.result_length=5",
		"execute_tool refund <- invoke_agent billing error.type=*errors.errorString gen_ai.agent.name=billing gen_ai.operation.name=execute_tool gen_ai.tool.call.id=c2 gen_ai.tool.name=refund voiced.tool.arguments_length=2 voiced.tool.result_length=13",
		"  event exception exception.message=no such order exception.type=*errors.errorString",
		"  status Error no such order",
		"invoke_agent billing <- invoke_agent triage gen_ai.agent.name=billing gen_ai.operation.name=invoke_agent",
		"invoke_agent triage gen_ai.agent.name=triage gen_ai.operation.name=invoke_agent voiced.answer.length=15 voiced.handoffs=1 voiced.input.messages=1",
		"  event handoff voiced.handoff.from=triage voiced.handoff.to=billing",
	})
}

func TestTraceRunnableFailure(t *testing.T) {
	r := newRecorder(t)
	boom := errors.New("boom")
	run := r.TraceRunnable(fakeRunnable{name: "a", err: boom, events: []agents.AgentEvent{
		{Agent: "a", Kind: agents.EventToolCall, ToolCall: &agents.ToolCall{ID: "c1", Name: "slow"}},
	}})
	if _, err := agents.Collect(context.Background(), run, agents.UserInput("x")); err != boom {
		t.Fatalf("err = %v, want boom", err)
	}
	diffLines(t, sortedDump(t, r), []string{
		"execute_tool slow <- invoke_agent a gen_ai.agent.name=a gen_ai.operation.name=execute_tool gen_ai.tool.call.id=c1 gen_ai.tool.name=slow voiced.cut=true voiced.tool.arguments_length=0",
		"invoke_agent a error.type=*errors.errorString gen_ai.agent.name=a gen_ai.operation.name=invoke_agent voiced.answer.length=0 voiced.handoffs=0 voiced.input.messages=1 voiced.retryable=false",
		"  event exception exception.message=boom exception.type=*errors.errorString",
		"  status Error boom",
	})
}

// sortedDump is dump with spans ordered by name: their start times are
// wall-clock ones.
func sortedDump(t *testing.T, r *recorder, skip ...string) []string {
	t.Helper()
	var blocks [][]string
	for _, l := range r.dump(t, base.Add(100*365*24*time.Hour), skip...) {
		if len(l) > 0 && l[0] != ' ' {
			blocks = append(blocks, nil)
		}
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], l)
	}
	slices.SortStableFunc(blocks, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	var out []string
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}
