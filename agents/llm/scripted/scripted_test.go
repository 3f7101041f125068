package scripted_test

import (
	"context"
	"errors"
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
