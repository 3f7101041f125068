package agent_test

import (
	"context"
	"fmt"
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

// modelStep is one call of an expectModel: the conversation it must be
// sent, and what it answers.
type modelStep struct {
	want   []agents.Message // compared by Role, Name (assistant), Content, ToolCalls, ToolCallID
	text   string
	calls  []agents.ToolCall
	before func(ctx context.Context) // runs before answering (may block)
}

// expectModel is a ChatModel that checks each request against its script
// and fails the test on any difference.
type expectModel struct {
	t     *testing.T
	mu    sync.Mutex
	steps []modelStep
	n     int
}

func (m *expectModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		m.mu.Lock()
		if m.n >= len(m.steps) {
			m.mu.Unlock()
			m.t.Errorf("unexpected model call %d: %s", m.n+1, dump(req.Messages))
			yield(agents.Event{}, fmt.Errorf("no more steps"))
			return
		}
		st := m.steps[m.n]
		m.n++
		n := m.n
		m.mu.Unlock()
		if got, want := dump(req.Messages), dump(st.want); got != want {
			m.t.Errorf("model call %d was sent\n%s\nwant\n%s", n, got, want)
		}
		if st.before != nil {
			st.before(ctx)
		}
		if st.text != "" && !yield(agents.Event{Text: st.text}, nil) {
			return
		}
		for _, c := range st.calls {
			if !yield(agents.Event{ToolCall: &c}, nil) {
				return
			}
		}
	}
}

func (m *expectModel) done() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n != len(m.steps) {
		m.t.Errorf("model called %d times, want %d", m.n, len(m.steps))
	}
}

// dump writes messages one a line, with what a model is shown of them.
func dump(ms []agents.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s", m.Role)
		if m.Role == agents.RoleAssistant && m.Name != "" {
			fmt.Fprintf(&b, "(%s)", m.Name)
		}
		if m.ToolCallID != "" {
			fmt.Fprintf(&b, " [%s]", m.ToolCallID)
		}
		fmt.Fprintf(&b, " %q", m.Content)
		for _, c := range m.ToolCalls {
			fmt.Fprintf(&b, " call %s %s(%s)", c.ID, c.Name, c.Arguments)
		}
		if m.Interrupted {
			b.WriteString(" interrupted")
		}
		b.WriteString("\n")
	}
	return b.String()
}

type orderIDArgs struct {
	ID string `json:"id"`
}

// runTurns runs st behind an interrupter and before a speaker, pushes each
// user text as a final transcript once the previous answer was played, and
// ends the session.
func runTurns(t *testing.T, st *agent.Processor, texts ...string) {
	t.Helper()
	p := pipeline.New(pipeline.Options{}, &interrupter{}, st, &speaker{})
	ctx := context.Background()
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for _, text := range texts {
		p.Push(ctx, &frame.Transcript{Text: text, Final: text != "STOP"})
		time.Sleep(time.Second)
		synctest.Wait()
	}
	p.Push(ctx, &frame.End{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func user(text string) agents.Message { return agents.Message{Role: agents.RoleUser, Content: text} }

func said(agent, text string, calls ...agents.ToolCall) agents.Message {
	return agents.Message{Role: agents.RoleAssistant, Name: agent, Content: text, ToolCalls: calls}
}

func result(id, name, content string) agents.Message {
	return agents.Message{Role: agents.RoleTool, Name: name, ToolCallID: id, Content: content}
}

// TestStageRemembersToolResults: on the second turn the model is asked
// about the first turn's tool result, and is sent the call and its result.
func TestStageRemembersToolResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lookup := agents.ToolCall{ID: "c1", Name: "lookup_order", Arguments: `{"id":"1234"}`}
		u1, u2 := user("how much was order 1234?"), user("what was the amount again?")
		call := said("clerk", "", lookup)
		res := result("c1", "lookup_order", "order 1234: 42.50 EUR, shipped")
		answer := said("clerk", "It was 42.50 euros.")
		model := &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, calls: []agents.ToolCall{lookup}},
			{want: []agents.Message{u1, call, res}, text: "It was 42.50 euros."},
			{want: []agents.Message{u1, call, res, answer, u2}, text: "Still 42.50 euros."},
		}}
		var args []string
		tool := agents.MustTool("lookup_order", "Look an order up.", func(_ context.Context, a orderIDArgs) (string, error) {
			args = append(args, a.ID)
			return "order " + a.ID + ": 42.50 EUR, shipped", nil
		})
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "clerk", Model: model, Tools: []agents.Tool{tool}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		if err != nil {
			t.Fatal(err)
		}
		runTurns(t, st, u1.Content, u2.Content)
		model.done()
		if len(args) != 1 || args[0] != "1234" {
			t.Errorf("tool called with %v", args)
		}
		want := []agents.Message{u1, call, res, answer, u2, said("clerk", "Still 42.50 euros.")}
		if got := dump(st.History()); got != dump(want) {
			t.Errorf("history\n%s\nwant\n%s", got, dump(want))
		}
	})
}

// TestStageHistoryKeepsHandoffHops: a handoff is recorded as the transfer
// call and its result, between the messages of the agents on either side.
func TestStageHistoryKeepsHandoffHops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		billingModel := &expectModel{t: t}
		billing, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "billing", Model: billingModel})
		if err != nil {
			t.Fatal(err)
		}
		transfer := agents.ToolCall{ID: "t1", Name: "transfer_to_billing", Arguments: "{}"}
		u1, u2 := user("I was charged twice"), user("and the second charge?")
		hop := []agents.Message{
			said("triage", "Let me get billing.", transfer),
			result("t1", "transfer_to_billing", "Transferred to billing."),
		}
		triage, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "triage", Model: &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, text: "Let me get billing.", calls: []agents.ToolCall{transfer}},
		}}, Handoffs: []agents.HandoffSpec{{Target: billing}}})
		if err != nil {
			t.Fatal(err)
		}
		first := append([]agents.Message{u1}, hop...)
		billingModel.steps = []modelStep{
			{want: first, text: "I see two charges."},
			{want: append(first, said("billing", "I see two charges."), u2), text: "It is refunded."},
		}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{triage, billing}})
		if err != nil {
			t.Fatal(err)
		}
		runTurns(t, st, u1.Content, u2.Content)
		billingModel.done()
		if st.Active() != "billing" {
			t.Errorf("active %q", st.Active())
		}
	})
}

// TestStageInterruptedToolCallGetsResult: a turn interrupted while its
// tool runs leaves the call in the history with a result saying so.
func TestStageInterruptedToolCallGetsResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := agents.ToolCall{ID: "c1", Name: "slow", Arguments: `{"id":"9"}`}
		u1, u2 := user("check order 9"), user("never mind")
		model := &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, calls: []agents.ToolCall{slow}},
			{want: []agents.Message{u1, said("a", "", slow),
				result("c1", "slow", "error: the user interrupted before the tool returned"), u2}, text: "Okay."},
		}}
		tool := agents.MustTool("slow", "Slow.", func(ctx context.Context, _ orderIDArgs) (string, error) {
			<-ctx.Done()
			return "", context.Cause(ctx)
		})
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Tools: []agents.Tool{tool}})
		st, _ := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		runTurns(t, st, u1.Content, "STOP", u2.Content)
		model.done()
	})
}

// TestStageTrimNeverSplitsCallAndResult: MaxHistory drops a tool result
// whose call it dropped, and keeps a call with its results.
func TestStageTrimNeverSplitsCallAndResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c1 := agents.ToolCall{ID: "c1", Name: "lookup_order", Arguments: `{"id":"1"}`}
		c2 := agents.ToolCall{ID: "c2", Name: "lookup_order", Arguments: `{"id":"2"}`}
		u1, u2 := user("orders 1 and 2?"), user("thanks")
		res1 := result("c1", "lookup_order", "order 1: 42.50 EUR, shipped")
		res2 := result("c2", "lookup_order", "order 2: 42.50 EUR, shipped")
		model := &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, calls: []agents.ToolCall{c1, c2}},
			{want: []agents.Message{u1, said("a", "", c1, c2), res1, res2}, text: "Both shipped."},
			// Kept: 4 of [u1, calls, res1, res2, answer, u2] would start
			// with res2, whose call is gone: it goes too.
			{want: []agents.Message{said("a", "Both shipped."), u2}, text: "You are welcome."},
		}}
		tool := agents.MustTool("lookup_order", "Look an order up.", func(_ context.Context, a orderIDArgs) (string, error) {
			return "order " + a.ID + ": 42.50 EUR, shipped", nil
		})
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Tools: []agents.Tool{tool}})
		st, _ := agent.New(agent.Config{Agents: []agents.Runnable{a}, MaxHistory: 3})
		runTurns(t, st, u1.Content, u2.Content)
		model.done()
	})
}

// TestStageHistoryPairsInterleavedCalls: the calls of agents running in
// parallel are each followed by their results, whatever order they come in.
func TestStageHistoryPairsInterleavedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a1 := agents.ToolCall{ID: "a1", Name: "x"}
		a2 := agents.ToolCall{ID: "a2", Name: "x"}
		b1 := agents.ToolCall{ID: "b1", Name: "y"}
		callEv := func(agent string, c agents.ToolCall) agents.AgentEvent {
			return agents.AgentEvent{Agent: agent, Kind: agents.EventToolCall, ToolCall: &c}
		}
		resEv := func(agent string, c agents.ToolCall) agents.AgentEvent {
			return agents.AgentEvent{Agent: agent, Kind: agents.EventToolResult, ToolResult: &agents.ToolResult{CallID: c.ID, Name: c.Name, Content: c.ID + " done"}}
		}
		w := &scriptAgent{name: "w", events: []agents.AgentEvent{
			callEv("A", a1), callEv("B", b1), resEv("A", a1), callEv("A", a2), resEv("B", b1), resEv("A", a2),
			{Agent: "A", Kind: agents.EventText, Text: "All done."},
		}}
		st, _ := agent.New(agent.Config{Agents: []agents.Runnable{w}})
		runTurns(t, st, "go")
		want := []agents.Message{
			user("go"),
			said("A", "", a1), result("a1", "x", "a1 done"),
			said("B", "", b1), result("b1", "y", "b1 done"),
			said("A", "", a2), result("a2", "x", "a2 done"),
			said("A", "All done."),
		}
		if got := dump(st.History()); got != dump(want) {
			t.Errorf("history\n%s\nwant\n%s", got, dump(want))
		}
	})
}

// TestStageTrimBytes: MaxHistoryBytes drops the oldest messages once the
// history holds more text than it allows, whatever their number, and
// keeps the newest message however long it is.
func TestStageTrimBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		long := strings.Repeat("x", 60)
		u1, u2, u3 := user("first "+long), user("second "+long), user("third "+long+long)
		model := &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, text: "One."},
			// u1 (66) + "One." (4+1) + u2 (67) = 138 > 100: u1 goes.
			{want: []agents.Message{said("a", "One."), u2}, text: "Two."},
			// u3 alone is 126: only it is kept.
			{want: []agents.Message{u3}, text: "Three."},
		}}
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model})
		st, _ := agent.New(agent.Config{Agents: []agents.Runnable{a}, MaxHistoryBytes: 100})
		runTurns(t, st, u1.Content, u2.Content, u3.Content)
		model.done()
	})
}
