package agents_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

// supportTOML is a customer-support flow for the scripted model: one rule
// list serves both agents, since each is offered only its own tools.
const supportTOML = `
fallback = "How can I help?"

[[rules]]
match = "charged twice|invoice|refund"
handoff = "Billing Desk"

[[rules]]
match = "(charged twice|invoice|refund)"
reply = "Let me look that up."
tool = "lookup_invoice"
args = '{"topic": "$1"}'

[[rules]]
after_tool = "^invoice (\\w+): (.*)$"
reply = "Invoice $1: $2"
`

type invoiceArgs struct {
	Topic string `json:"topic" jsonschema:"description=what the customer asks about"`
}

type supportFlow struct {
	triage, billing *agents.LLMAgent
	triageReqs      *recorder
	billingReqs     *recorder
	lookups         []invoiceArgs
}

func newSupport(t *testing.T, h agents.HandoffSpec) *supportFlow {
	t.Helper()
	var cfg scripted.Config
	d := toml.NewDecoder(strings.NewReader(supportTOML))
	d.DisallowUnknownFields()
	if err := d.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	model, err := scripted.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &supportFlow{triageReqs: &recorder{m: model}, billingReqs: &recorder{m: model}}
	lookup := agents.MustTool("lookup_invoice", "Find the customer's last invoice", func(_ context.Context, a invoiceArgs) (string, error) {
		f.lookups = append(f.lookups, a)
		return "invoice 42: charged twice on May 3, one charge refunded", nil
	})
	f.billing, err = agents.NewLLMAgent(agents.LLMAgentConfig{Name: "Billing Desk", Instructions: "You handle billing.", Model: f.billingReqs, Tools: []agents.Tool{lookup}})
	if err != nil {
		t.Fatal(err)
	}
	h.Target = f.billing
	f.triage, err = agents.NewLLMAgent(agents.LLMAgentConfig{Name: "triage", Instructions: "Route the caller.", Model: f.triageReqs, Handoffs: []agents.HandoffSpec{h}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func toolNames(r agents.Request) []string {
	var names []string
	for _, s := range r.Tools {
		names = append(names, s.Name)
	}
	return names
}

func TestHandoffTriageToBilling(t *testing.T) {
	var hooked []string
	f := newSupport(t, agents.HandoffSpec{
		Description: "Billing questions: charges, invoices, refunds.",
		OnHandoff: func(_ context.Context, from, to string) error {
			hooked = append(hooked, from+">"+to)
			return nil
		},
	})
	in := agents.Input{Messages: []agents.Message{
		{Role: agents.RoleUser, Content: "hello"},
		{Role: agents.RoleAssistant, Name: "triage", Content: "How can I help?"},
		{Role: agents.RoleUser, Content: "I was charged twice"},
	}}
	lines, err := trace(context.Background(), f.triage, in)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []string{
		"triage agent_started",
		"triage handoff triage -> Billing Desk",
		"Billing Desk agent_started",
		"Billing Desk text Let me look that up.",
		`Billing Desk tool_call lookup_invoice {"topic": "charged twice"}`,
		"Billing Desk tool_result lookup_invoice = invoice 42: charged twice on May 3, one charge refunded",
		"Billing Desk text  Invoice 42: charged twice on May 3, one charge refunded", // a new step after text starts with a space
		"Billing Desk agent_finished",
		"triage agent_finished",
	})
	if !slices.Equal(hooked, []string{"triage>Billing Desk"}) || len(f.lookups) != 1 || f.lookups[0].Topic != "charged twice" {
		t.Fatalf("OnHandoff %v, lookups %+v", hooked, f.lookups)
	}

	tr := f.triageReqs.requests()
	if len(tr) != 1 || !slices.Equal(toolNames(tr[0]), []string{"transfer_to_billing_desk"}) ||
		tr[0].Tools[0].Description != "Billing questions: charges, invoices, refunds." || tr[0].System != "Route the caller." {
		t.Fatalf("triage requests %+v", tr)
	}
	br := f.billingReqs.requests()
	if len(br) != 2 {
		t.Fatalf("billing asked %d times", len(br))
	}
	for _, r := range br {
		if !slices.Equal(toolNames(r), []string{"lookup_invoice"}) || r.System != "You handle billing." {
			t.Fatalf("billing request tools %v system %q", toolNames(r), r.System)
		}
	}
	// Billing is given the whole conversation, the transfer included.
	m := br[0].Messages
	if len(m) != 5 || m[2].Content != "I was charged twice" ||
		m[3].Role != agents.RoleAssistant || m[3].Name != "triage" || m[3].ToolCalls[0].Name != "transfer_to_billing_desk" ||
		m[4].Role != agents.RoleTool || m[4].ToolCallID != m[3].ToolCalls[0].ID || m[4].Content != "Transferred to Billing Desk." {
		t.Fatalf("billing's first request: %+v", m)
	}
	// And then its own tool call and result.
	m = br[1].Messages
	if len(m) != 7 || m[5].Name != "Billing Desk" || m[5].ToolCalls[0].Name != "lookup_invoice" ||
		m[6].ToolCallID != m[5].ToolCalls[0].ID || !strings.HasPrefix(m[6].Content, "invoice 42") {
		t.Fatalf("billing's second request: %+v", m)
	}
	if m[3].ToolCalls[0].ID == m[5].ToolCalls[0].ID {
		t.Fatalf("tool call IDs repeat: %q", m[3].ToolCalls[0].ID)
	}
}

func TestHandoffDisabledIsNotOffered(t *testing.T) {
	var mu sync.Mutex
	open := false
	f := newSupport(t, agents.HandoffSpec{IsEnabled: func(context.Context) bool { mu.Lock(); defer mu.Unlock(); return open }})
	text, err := agents.Collect(context.Background(), f.triage, agents.UserInput("refund please"))
	if err != nil || text != "How can I help?" {
		t.Fatalf("Collect = %q, %v", text, err)
	}
	if r := f.triageReqs.requests(); len(r) != 1 || len(r[0].Tools) != 0 || len(f.billingReqs.requests()) != 0 {
		t.Fatalf("disabled handoff offered: %+v", r)
	}
	mu.Lock()
	open = true
	mu.Unlock()
	text, err = agents.Collect(context.Background(), f.triage, agents.UserInput("refund please"))
	if err != nil || !strings.HasPrefix(text, "Let me look that up. Invoice 42") {
		t.Fatalf("enabled: Collect = %q, %v", text, err)
	}
}

func TestHandoffInputFilter(t *testing.T) {
	f := newSupport(t, agents.HandoffSpec{InputFilter: agents.LastUserMessage})
	in := agents.Input{Messages: []agents.Message{
		{Role: agents.RoleUser, Content: "hi"},
		{Role: agents.RoleAssistant, Content: "How can I help?"},
		{Role: agents.RoleUser, Content: "where is my invoice"},
	}}
	if _, err := agents.Collect(context.Background(), f.triage, in); err != nil {
		t.Fatal(err)
	}
	m := f.billingReqs.requests()[0].Messages
	if len(m) != 1 || m[0].Role != agents.RoleUser || m[0].Content != "where is my invoice" {
		t.Fatalf("billing given %+v", m)
	}
}

func TestHandoffRefusedIsFedBack(t *testing.T) {
	closed := errors.New("billing is closed")
	rec := &recorder{m: stepsModel(
		[]agents.Event{callEv("1", "transfer_to_billing", "{}")},
		[]agents.Event{{Text: "Billing is closed, sorry."}},
	)}
	billing, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "billing", Model: stepsModel([]agents.Event{{Text: "wrong"}})})
	triage, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "triage", Model: rec, Handoffs: []agents.HandoffSpec{{
		Target:    billing,
		OnHandoff: func(context.Context, string, string) error { return closed },
	}}})
	lines, err := trace(context.Background(), triage, agents.UserInput("refund"))
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []string{"triage agent_started", "triage text Billing is closed, sorry.", "triage agent_finished"})
	m := rec.requests()[1].Messages
	if m[2].Role != agents.RoleTool || m[2].Content != "error: billing is closed" {
		t.Fatalf("fed back %+v", m[2])
	}
}

func TestHandoffLoopIsBounded(t *testing.T) {
	ping, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "ping", Model: stepsModel([]agents.Event{callEv("1", "transfer_to_pong", "{}")})})
	pong, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "pong", Model: stepsModel([]agents.Event{callEv("1", "transfer_to_ping", "{}")})})
	if err := ping.SetHandoffs(agents.HandoffSpec{Target: pong}); err != nil {
		t.Fatal(err)
	}
	if err := pong.SetHandoffs(agents.HandoffSpec{Target: ping}); err != nil {
		t.Fatal(err)
	}
	lines, err := trace(context.Background(), ping, agents.UserInput("x"))
	if !errors.Is(err, agents.ErrMaxHandoffs) {
		t.Fatalf("err %v", err)
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l, " handoff ") {
			n++
		}
	}
	if n != agents.MaxHandoffDepth {
		t.Fatalf("%d handoffs, want %d", n, agents.MaxHandoffDepth)
	}
}

func TestHandoffToolName(t *testing.T) {
	for in, want := range map[string]string{
		"billing":      "transfer_to_billing",
		"Billing Desk": "transfer_to_billing_desk",
		"tech-support": "transfer_to_tech_support",
		"Ünïcode 2":    "transfer_to__n_code_2",
		"a_b9":         "transfer_to_a_b9",
	} {
		if got := agents.HandoffToolName(in); got != want {
			t.Errorf("HandoffToolName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilters(t *testing.T) {
	conv := []agents.Message{
		{Role: agents.RoleUser, Content: "one"},
		{Role: agents.RoleAssistant, Content: "", ToolCalls: []agents.ToolCall{{ID: "1", Name: "t"}}},
		{Role: agents.RoleTool, ToolCallID: "1", Content: "r"},
		{Role: agents.RoleAssistant, Content: "said", ToolCalls: []agents.ToolCall{{ID: "2", Name: "t"}}},
		{Role: agents.RoleTool, ToolCallID: "2", Content: "r"},
		{Role: agents.RoleUser, Content: "two"},
	}
	orig := slices.Clone(conv)
	got := agents.NoToolMessages(agents.Input{Messages: conv}).Messages
	want := []agents.Message{
		{Role: agents.RoleUser, Content: "one"},
		{Role: agents.RoleAssistant, Content: "said"},
		{Role: agents.RoleUser, Content: "two"},
	}
	if !equalMessages(got, want) {
		t.Fatalf("NoToolMessages = %+v", got)
	}
	if !equalMessages(conv, orig) || conv[3].ToolCalls == nil {
		t.Fatal("NoToolMessages modified its input")
	}
	if got := agents.LastUserMessage(agents.Input{Messages: conv}).Messages; len(got) != 1 || got[0].Content != "two" {
		t.Fatalf("LastUserMessage = %+v", got)
	}
	if got := agents.LastUserMessage(agents.Input{}); len(got.Messages) != 0 {
		t.Fatalf("LastUserMessage(empty) = %+v", got)
	}
}

func equalMessages(a, b []agents.Message) bool {
	return slices.EqualFunc(a, b, func(x, y agents.Message) bool {
		return x.Role == y.Role && x.Content == y.Content && x.Name == y.Name && x.ToolCallID == y.ToolCallID &&
			slices.Equal(x.ToolCalls, y.ToolCalls)
	})
}
