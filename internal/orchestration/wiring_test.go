package orchestration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/webhook"
	"github.com/voiced-dev/voiced/internal/orchestration"
)

// The planner example plans two steps, runs them in order (the second
// given the first's result) and writes the answer from both.
func TestPlannerExample(t *testing.T) {
	res, reqs := buildExample(t, "planner.toml", nil)
	if res.Mode != "planner" || len(res.Agents) != 1 {
		t.Fatalf("result %+v", res)
	}
	c := newCall(t, res, nil)
	a := c.say("I'm flying to Tokyo, what should I expect when I land?")
	wantTools := []string{`clock get_time {"city": "Tokyo"}`, `weather get_weather {"city": "Tokyo"}`}
	if !slices.Equal(a.tools, wantTools) {
		t.Errorf("tool calls %q, want %q (in this order)", a.tools, wantTools)
	}
	if want := "When you land, It is 9:00 PM in Tokyo. In Tokyo it is cloudy and 17 degrees. Have a good flight."; a.text != want {
		t.Errorf("answer %q, want %q", a.text, want)
	}
	// The weather step was given the clock step's result, then its task.
	w := reqs.of("Tell the weather")
	if len(w) == 0 {
		t.Fatal("the weather agent was not asked")
	}
	msgs := w[0].messages
	n := len(msgs)
	if n < 2 || msgs[n-2].Name != "clock" || msgs[n-2].Content != "It is 9:00 PM in Tokyo." || msgs[n-1].Content != "weather in Tokyo" {
		t.Errorf("weather step's input %+v", msgs)
	}
	if p := reqs.of("You are a planner"); len(p) != 1 || !strings.Contains(p[0].system, "- clock: clock: tells the local time") {
		t.Errorf("planning requests %+v", p)
	}
}

// The graph example runs only the branch the intake chose, then the
// wrap-up on that branch's result.
func TestGraphExample(t *testing.T) {
	for _, tc := range []struct {
		say, tools, answer string
		ran, skipped       string
	}{
		{"I was charged twice on invoice 1001", `billing lookup_invoice {"invoice_id": "1001"}`,
			"Invoice 1001: 49 dollars for the Pro plan, charged twice on March 3rd; the duplicate charge is refundable. Is there anything else I can do?",
			"Look the invoice up", "Give one troubleshooting step"},
		{"the app crashes when I open it", "",
			"Please restart the app and try again. Is there anything else I can do?",
			"Give one troubleshooting step", "Look the invoice up"},
	} {
		t.Run(tc.say, func(t *testing.T) {
			res, reqs := buildExample(t, "graph.toml", nil)
			a := newCall(t, res, nil).say(tc.say)
			if strings.Join(a.tools, "\n") != tc.tools || a.text != tc.answer {
				t.Errorf("tools %q, answer %q; want %q, %q", a.tools, a.text, tc.tools, tc.answer)
			}
			if len(reqs.of(tc.ran)) == 0 || len(reqs.of(tc.skipped)) != 0 {
				t.Errorf("the branch taken did not run, or the other did")
			}
		})
	}
}

// ticketTool stands in for open_ticket and records its calls.
type ticketTool struct {
	mu   sync.Mutex
	args []string
}

func (f *ticketTool) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: "open_ticket", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (f *ticketTool) Call(_ context.Context, args json.RawMessage) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.args = append(f.args, string(args))
	return "Ticket 7 opened.", nil
}

// The handoff example: billing is offered only after the invoice was
// looked up, gets the filtered conversation, and the transfer opens a
// ticket and sets metadata; the priority desk is offered only on the
// priority line (session metadata).
func TestHandoffConditionsExample(t *testing.T) {
	tickets := &ticketTool{}
	res, reqs := buildExample(t, "handoff-conditions.toml", map[string]agents.Tool{"open_ticket": tickets})
	c := newCall(t, res, map[string]string{"sip.to": "5551234"})

	a := c.say("I want a refund please")
	if len(a.handoffs) != 0 || a.text != "I can help with that. What is the invoice number?" {
		t.Fatalf("before the lookup: %+v", a)
	}
	a = c.say("manager please")
	if len(a.handoffs) != 0 || a.text != "Managers take calls on our priority line." {
		t.Fatalf("off the priority line: %+v", a)
	}
	for _, q := range reqs.of("You are the front desk") {
		if slices.Contains(q.tools, "transfer_to_billing") || slices.Contains(q.tools, "transfer_to_priority") {
			t.Fatalf("a handoff was offered before its condition held: %v", q.tools)
		}
	}

	a = c.say("It is invoice 1001")
	if !slices.Equal(a.handoffs, []string{"front_desk>billing"}) || !strings.HasSuffix(a.text, "Billing here. The duplicate charge will be refunded within five days.") {
		t.Fatalf("after the lookup: %+v", a)
	}
	if fd := reqs.of("You are the front desk"); !slices.Contains(fd[len(fd)-1].tools, "transfer_to_billing") {
		t.Errorf("billing not offered after the lookup: %v", fd[len(fd)-1].tools)
	}
	if got := tickets.args; len(got) != 1 || got[0] != `{"summary": "billing question passed on by the front desk"}` {
		t.Errorf("open_ticket calls %q", got)
	}
	if v, _ := c.stage.State().Get("department"); v != "billing" {
		t.Errorf("metadata department = %q", v)
	}
	// Billing saw the last four messages before the transfer, without
	// tool calls or results.
	b := reqs.of("You are Acme's billing specialist")
	if len(b) != 1 {
		t.Fatalf("%d billing requests", len(b))
	}
	var roles []string
	for _, m := range b[0].messages {
		if m.Role == agents.RoleTool || len(m.ToolCalls) > 0 {
			t.Errorf("billing was given a tool message: %+v", m)
		}
		roles = append(roles, string(m.Role)+":"+m.Content)
	}
	want := []string{
		"assistant:Managers take calls on our priority line.",
		"user:It is invoice 1001",
		"assistant:Let me find invoice 1001.",
		"assistant:Invoice 1001: 49 dollars for the Pro plan, charged twice on March 3rd; the duplicate charge is refundable. I'm passing you to billing.",
	}
	if !slices.Equal(roles, want) {
		t.Errorf("billing's input:\n%s\nwant:\n%s", strings.Join(roles, "\n"), strings.Join(want, "\n"))
	}

	// On the priority line the priority desk is offered.
	res2, _ := buildExample(t, "handoff-conditions.toml", nil)
	a = newCall(t, res2, map[string]string{"sip.to": "800"}).say("manager please")
	if !slices.Equal(a.handoffs, []string{"front_desk>priority"}) || a.text != "Priority desk here. A manager will call you back within the hour." {
		t.Fatalf("on the priority line: %+v", a)
	}
}

// The events example: the concierge publishes an order; the kitchen runs
// in the background and its answer is spoken after the concierge's; the
// delivery desk is given the event when the caller is transferred.
func TestEventsExample(t *testing.T) {
	res, reqs := buildExample(t, "events.toml", nil)
	c := newCall(t, res, nil)
	a := c.say("I'd like to order a pizza")
	if want := `concierge publish_event {"topic": "order.placed", "message": "pizza"}`; !slices.Equal(a.tools, []string{want}) || a.text != "One pizza, coming up. Your order is in." {
		t.Fatalf("order: %+v", a)
	}
	if k := c.next(); k.text != "The kitchen has started on your pizza." {
		t.Fatalf("kitchen: %+v", k)
	}
	a = c.say("where is my delivery?")
	if !slices.Equal(a.handoffs, []string{"concierge>delivery"}) || a.text != "Your order will be at your door in thirty minutes." {
		t.Fatalf("delivery: %+v", a)
	}
	d := reqs.of("You track deliveries")
	if len(d) != 1 {
		t.Fatalf("%d delivery requests", len(d))
	}
	var events []string
	for _, m := range d[0].messages {
		if m.Role == agents.RoleSystem && m.Name == "event" {
			events = append(events, m.Content)
		}
	}
	if want := []string{"Event on order.placed from concierge: pizza"}; !slices.Equal(events, want) {
		t.Errorf("delivery's events %q, want %q", events, want)
	}
	// A context event is given once: the next run has none.
	if a = c.say("where is my delivery now?"); len(a.handoffs) != 0 {
		t.Fatalf("second delivery question: %+v", a)
	}
	d = reqs.of("You track deliveries")
	for _, m := range d[len(d)-1].messages {
		if m.Role == agents.RoleSystem {
			t.Errorf("event given again: %+v", m)
		}
	}
}

// audit is an endpoint that records the hooks' requests.
type audit struct {
	mu       sync.Mutex
	payloads []webhook.Payload
	auth     []string
	answer   func(p webhook.Payload) string
}

func (a *audit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p webhook.Payload
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.payloads = append(a.payloads, p)
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	answer := a.answer
	a.mu.Unlock()
	if answer != nil {
		w.Write([]byte(answer(p)))
	}
}

func (a *audit) sorted() []webhook.Payload {
	a.mu.Lock()
	defer a.mu.Unlock()
	ps := slices.Clone(a.payloads)
	slices.SortFunc(ps, func(x, y webhook.Payload) int { return int(x.Seq) - int(y.Seq) })
	return ps
}

// The audit hooks example reports every run, tool call and handoff, with
// the token from the environment, and a before-event can refuse.
func TestAuditHooksExample(t *testing.T) {
	end := &audit{}
	srv := httptest.NewServer(end)
	defer srv.Close()
	t.Setenv("VOICED_AUDIT_URL", srv.URL+"/audit")
	t.Setenv("VOICED_AUDIT_TOKEN", "s3cret")
	res, _ := buildExample(t, "audit-hooks.toml", nil)
	c := newCall(t, res, map[string]string{"sip.to": "800"})
	a := c.say("I was charged twice on invoice 1001")
	if !slices.Equal(a.handoffs, []string{"triage>billing"}) || !strings.HasPrefix(a.text, "Invoice 1001") {
		t.Fatalf("answer %+v", a)
	}
	c.end()
	if err := res.Close(); err != nil { // sends what is queued
		t.Fatal(err)
	}
	got := end.sorted()
	var lines []string
	for _, p := range got {
		l := p.Event + " " + p.Agent
		switch p.Event {
		case webhook.Handoff:
			l += " " + p.From + ">" + p.To
		case webhook.BeforeTool:
			l += " " + p.Tool.Name + " " + string(p.Tool.Arguments)
		case webhook.AfterTool:
			l += " " + p.Tool.Name + " " + p.Result.Content[:12]
		case webhook.BeforeAgent:
			l += " " + p.Messages[len(p.Messages)-1].Content
		}
		lines = append(lines, l)
		if p.Session != "s1" || p.Metadata["sip.to"] != "800" || p.Time.IsZero() {
			t.Errorf("payload %+v", p)
		}
	}
	want := []string{
		"before_agent triage I was charged twice on invoice 1001",
		"handoff triage triage>billing",
		"before_agent billing Transferred to billing.",
		`before_tool billing lookup_invoice {"invoice_id":"1001"}`,
		"after_tool billing lookup_invoice Invoice 1001",
		"after_agent billing",
		"after_agent triage",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, h := range end.auth {
		if h != "Bearer s3cret" {
			t.Errorf("Authorization %q", h)
		}
	}

	// The endpoint refuses tool calls: the model reads why.
	end2 := &audit{answer: func(p webhook.Payload) string {
		if p.Event == webhook.BeforeTool {
			return `{"allow": false, "reason": "invoices are audited today"}`
		}
		return `{"allow": true}`
	}}
	srv2 := httptest.NewServer(end2)
	defer srv2.Close()
	t.Setenv("VOICED_AUDIT_URL", srv2.URL)
	res2, _ := buildExample(t, "audit-hooks.toml", nil)
	a = newCall(t, res2, nil).say("I was charged twice on invoice 1001")
	if want := "error: refused by audit hook: invoices are audited today"; a.text != want {
		t.Fatalf("answer %q, want %q", a.text, want)
	}
}

func TestLastMessages(t *testing.T) {
	u := func(s string) agents.Message { return agents.Message{Role: agents.RoleUser, Content: s} }
	call := agents.Message{Role: agents.RoleAssistant, Content: "looking", ToolCalls: []agents.ToolCall{{ID: "1", Name: "lookup"}}}
	result := agents.Message{Role: agents.RoleTool, Name: "lookup", ToolCallID: "1", Content: "found"}
	transfer := agents.Message{Role: agents.RoleAssistant, ToolCalls: []agents.ToolCall{{ID: "2", Name: "transfer_to_b"}}}
	done := agents.Message{Role: agents.RoleTool, Name: "transfer_to_b", ToolCallID: "2", Content: "Transferred to b."}
	in := agents.Input{Messages: []agents.Message{u("one"), u("two"), call, result, transfer, done}}
	for n, want := range map[int]string{
		1:  "assistant: tool:Transferred to b.", // a result cut from its call is dropped
		2:  "assistant:looking tool:found assistant: tool:Transferred to b.",
		10: "user:one user:two assistant:looking tool:found assistant: tool:Transferred to b.",
	} {
		var got []string
		for _, m := range orchestration.LastMessages(in, n).Messages {
			got = append(got, string(m.Role)+":"+m.Content)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("LastMessages(%d) = %q, want %q", n, strings.Join(got, " "), want)
		}
	}
	if len(in.Messages) != 6 || in.Messages[0].Content != "one" {
		t.Fatal("the input was modified")
	}
}
