package fake_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/fake"
)

func ask(text string) agents.Request {
	return agents.Request{Messages: []agents.Message{{Role: agents.RoleUser, Content: text}}}
}

// TestTimeline: token i comes FirstToken + i/TokensPerSecond after the call
// and the tokens make up the reply; the last one carries the finish.
func TestTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := fake.New(fake.Config{Reply: "One two three.", FirstToken: 350 * time.Millisecond, TokensPerSecond: 20})
		start := time.Now()
		var text strings.Builder
		var at []time.Duration
		var last agents.Event
		for ev, err := range m.Stream(context.Background(), ask("hi")) {
			if err != nil {
				t.Fatal(err)
			}
			at = append(at, time.Since(start))
			text.WriteString(ev.Text)
			last = ev
		}
		if text.String() != "One two three." {
			t.Errorf("reply %q", text.String())
		}
		want := []time.Duration{350 * time.Millisecond, 400 * time.Millisecond, 450 * time.Millisecond}
		if len(at) != len(want) {
			t.Fatalf("tokens at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("token %d at %v, want %v", i, at[i], want[i])
			}
		}
		if last.FinishReason != "stop" || last.Usage == nil || last.Usage.OutputTokens != 3 {
			t.Errorf("last event %+v", last)
		}
		if st := m.Stats(); st != (fake.Stats{Calls: 1, Completed: 1}) {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestChecks(t *testing.T) {
	m := fake.New(fake.Config{Expect: "What is the weather like today"})
	ctx := context.Background()
	if _, err := agents.Generate(ctx, m, agents.Request{}); !errors.Is(err, agents.ErrEmptyRequest) {
		t.Errorf("empty request: %v", err)
	}
	asst := agents.Request{Messages: []agents.Message{{Role: agents.RoleUser, Content: "x"}, {Role: agents.RoleAssistant, Content: "y"}}}
	if _, err := agents.Generate(ctx, m, asst); !errors.Is(err, agents.ErrEmptyRequest) {
		t.Errorf("assistant last: %v", err)
	}
	if _, err := agents.Generate(ctx, m, ask("something else")); !errors.Is(err, fake.ErrUnexpected) {
		t.Errorf("unexpected text: %v", err)
	}
	got, err := agents.Generate(ctx, m, ask(" what is the weather like today "))
	if err != nil || got != fake.DefaultReply {
		t.Errorf("expected text: %q, %v", got, err)
	}
}

// TestCancel: barge-in ends the stream at once with the context's error.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := fake.New(fake.Config{TokensPerSecond: 10})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(250*time.Millisecond, cancel)
		n := 0
		var err error
		for ev, e := range m.Stream(ctx, ask("hi")) {
			if e != nil {
				err = e
				break
			}
			_ = ev
			n++
		}
		if !errors.Is(err, context.Canceled) || n != 3 {
			t.Errorf("%d tokens, err %v; want 3 and canceled", n, err)
		}
		if m.Stats().Cancelled != 1 {
			t.Errorf("stats %+v", m.Stats())
		}
	})
}

// TestConcurrent: one model serves many sessions (run with -race).
func TestConcurrent(t *testing.T) {
	m := fake.New(fake.Config{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := agents.Generate(context.Background(), m, ask("hi")); err != nil || got != fake.DefaultReply {
				t.Errorf("%q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if m.Stats().Completed != 8 {
		t.Errorf("stats %+v", m.Stats())
	}
}
