package scripted_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

func user(texts ...string) agents.Request {
	var r agents.Request
	for i, t := range texts {
		r.Messages = append(r.Messages, agents.Message{Role: agents.RoleUser, Content: t})
		if i < len(texts)-1 {
			r.Messages = append(r.Messages, agents.Message{Role: agents.RoleAssistant, Content: "ok"})
		}
	}
	return r
}

func TestReplyRules(t *testing.T) {
	m, err := scripted.New(scripted.Config{
		Rules: []scripted.Rule{
			{Match: `\bhello\b`, Reply: "Hi there."},
			{Match: `my name is (?P<name>\w+)`, Reply: "Nice to meet you, ${name}."},
			{Match: `what did i say`, Reply: "You said: {previous}."},
		},
		Fallback: "Echo: $0",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  agents.Request
		want string
	}{
		{user("HELLO world"), "Hi there."},
		{user("well, my name is Ada"), "Nice to meet you, Ada."},
		{user("the sky is blue", "what did I say"), "You said: the sky is blue."},
		{user("what did I say"), "You said: nothing yet."},
		{user("  something else "), "Echo: something else"},
	} {
		got, err := m.Reply(tc.req)
		if err != nil || got != tc.want {
			t.Errorf("Reply(%q) = %q, %v; want %q", tc.req.Messages[len(tc.req.Messages)-1].Content, got, err, tc.want)
		}
	}
	if _, err := m.Reply(agents.Request{}); !errors.Is(err, agents.ErrEmptyRequest) {
		t.Errorf("empty request: %v", err)
	}
}

func TestBadRule(t *testing.T) {
	if _, err := scripted.New(scripted.Config{Rules: []scripted.Rule{{Match: "(", Reply: "x"}}}); !errors.Is(err, scripted.ErrBadRule) {
		t.Fatalf("New = %v, want ErrBadRule", err)
	}
}

func TestStreamWordByWord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := scripted.New(scripted.Config{Fallback: "one two three", FirstTokenDelay: 300 * time.Millisecond, TokenDelay: 50 * time.Millisecond})
		start := time.Now()
		var got []string
		var at []time.Duration
		for ev, err := range m.Stream(context.Background(), user("x")) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Text)
			at = append(at, time.Since(start))
		}
		if strings.Join(got, "|") != "one |two |three" {
			t.Fatalf("tokens %q", got)
		}
		want := []time.Duration{300 * time.Millisecond, 350 * time.Millisecond, 400 * time.Millisecond}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("token %d at %v, want %v", i, at[i], want[i])
			}
		}
	})
}

func TestStreamCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := scripted.New(scripted.Config{Fallback: "a b c d e f", TokenDelay: 100 * time.Millisecond})
		cause := errors.New("barge-in")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(250*time.Millisecond, func() { cancel(cause) })
		var n int
		var last error
		for _, err := range m.Stream(ctx, user("x")) {
			if err != nil {
				last = err
				break
			}
			n++
		}
		if n != 3 || !errors.Is(last, cause) { // words at 0, 100 and 200 ms
			t.Fatalf("got %d tokens then %v; want 3 then the cause", n, last)
		}
		got, err := agents.Generate(context.Background(), m, user("x"))
		if err != nil || got != "a b c d e f" {
			t.Fatalf("Generate = %q, %v", got, err)
		}
	})
}

func offer(r agents.Request, tools ...string) agents.Request {
	for _, t := range tools {
		r.Tools = append(r.Tools, agents.ToolSpec{Name: t})
	}
	return r
}

func TestToolRules(t *testing.T) {
	m, err := scripted.New(scripted.Config{Rules: []scripted.Rule{
		{Match: `charged twice|refund`, Handoff: "Billing"},
		{Match: `look up (.+)`, Reply: "One moment.", Tool: "lookup", Args: `{"q": "$1", "before": "{previous}"}`,
			Calls: []scripted.Call{{Tool: "audit"}}},
		{Match: `refund`, AfterTool: `^(\d+) (.*)`, Reply: "Refund of $1: {result}"},
		{AfterTool: `error`, Reply: "That failed."},
	}, Fallback: "fallback", ToolFallback: "Result: {result}"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(id, name, args string) agents.ToolCall {
		return agents.ToolCall{ID: id, Name: name, Arguments: args}
	}
	quoted := user("say \"hi\"", `look up a "b" \ c`)
	afterTools := func(userText string, results ...string) agents.Request {
		r := user(userText)
		var calls []agents.ToolCall
		for i := range results {
			calls = append(calls, call(string(rune('1'+i)), "lookup", "{}"))
		}
		r.Messages = append(r.Messages, agents.Message{Role: agents.RoleAssistant, ToolCalls: calls})
		for i, res := range results {
			r.Messages = append(r.Messages, agents.Message{Role: agents.RoleTool, ToolCallID: calls[i].ID, Content: res})
		}
		return r
	}
	handedOff := user("I want a refund")
	handedOff.Messages = append(handedOff.Messages,
		agents.Message{Role: agents.RoleAssistant, ToolCalls: []agents.ToolCall{call("call_1", "transfer_to_billing", "{}")}},
		agents.Message{Role: agents.RoleTool, ToolCallID: "call_1", Content: "Transferred to Billing."}) // no Name: found by ID
	for _, tc := range []struct {
		name string
		req  agents.Request
		want scripted.Answer
	}{
		{"handoff offered", offer(user("I was charged twice"), "transfer_to_billing"),
			scripted.Answer{ToolCalls: []agents.ToolCall{call("call_1", "transfer_to_billing", "{}")}}},
		{"handoff not offered", user("I was charged twice"), scripted.Answer{Text: "fallback"}},
		{"tools, escaped", offer(quoted, "lookup", "audit"), scripted.Answer{Text: "One moment.", ToolCalls: []agents.ToolCall{
			call("call_1", "lookup", `{"q": "a \"b\" \\ c", "before": "say \"hi\""}`), call("call_2", "audit", "{}")}}},
		{"one tool missing", offer(quoted, "lookup"), scripted.Answer{Text: "fallback"}},
		{"after tool", afterTools("refund please", "42 euros back"), scripted.Answer{Text: "Refund of 42: 42 euros back"}},
		{"after tool, match fails", afterTools("hello", "42 euros back"), scripted.Answer{Text: "Result: 42 euros back"}},
		{"after tools", afterTools("hello", "ok", "error: down"), scripted.Answer{Text: "That failed."}},
		{"after handoff", offer(handedOff, "lookup", "audit"), scripted.Answer{Text: "fallback"}},
	} {
		got, err := m.Answer(tc.req)
		if err != nil || got.Text != tc.want.Text || !slices.Equal(got.ToolCalls, tc.want.ToolCalls) {
			t.Errorf("%s: Answer = %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
	// Call IDs continue the conversation's numbering.
	r := offer(afterTools("look up x", "r1", "r2"), "lookup", "audit")
	r.Messages = append(r.Messages, agents.Message{Role: agents.RoleUser, Content: "look up y"})
	got, _ := m.Answer(r)
	if len(got.ToolCalls) != 2 || got.ToolCalls[0].ID != "call_3" || got.ToolCalls[1].ID != "call_4" {
		t.Fatalf("IDs %+v", got.ToolCalls)
	}
}

func TestStreamToolCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := scripted.New(scripted.Config{Rules: []scripted.Rule{{Match: "x", Reply: "a b", Tool: "t", Args: `{}`}}, FirstTokenDelay: time.Second})
		var got []string
		for ev, err := range m.Stream(context.Background(), offer(user("x"), "t")) {
			if err != nil {
				t.Fatal(err)
			}
			s := ev.Text
			if ev.ToolCall != nil {
				s = "call " + ev.ToolCall.Name
			}
			got = append(got, s+"|"+ev.FinishReason)
		}
		if strings.Join(got, ",") != "a |,b|,call t|tool_calls" {
			t.Fatalf("events %q", got)
		}
		m, _ = scripted.New(scripted.Config{Rules: []scripted.Rule{{Match: "x", Tool: "t"}}, FirstTokenDelay: time.Second})
		start := time.Now()
		n := 0
		for ev, err := range m.Stream(context.Background(), offer(user("x"), "t")) {
			if err != nil || ev.ToolCall == nil || ev.Text != "" || time.Since(start) != time.Second {
				t.Fatalf("event %+v, %v at %v", ev, err, time.Since(start))
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%d events", n)
		}
	})
}

func TestBadToolRules(t *testing.T) {
	for _, r := range []scripted.Rule{
		{Args: "{}"},
		{Calls: []scripted.Call{{Args: "{}"}}},
		{AfterTool: "("},
	} {
		if _, err := scripted.New(scripted.Config{Rules: []scripted.Rule{r}}); !errors.Is(err, scripted.ErrBadRule) {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
