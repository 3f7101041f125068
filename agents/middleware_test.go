package agents_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// planned answers its n-th call as plan[n] says (the last one again once
// the plan runs out), and records when each call came and what it was
// asked.
type planned struct {
	name string
	plan []string // ok, retry (retryable error), fatal, partial (text then a retryable error), hang (until ctx is done)

	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	sys   []string
}

var errUpstream = errors.New("upstream")

func newPlanned(name string, plan ...string) *planned {
	return &planned{name: name, plan: plan, start: time.Now()}
}

func (p *planned) Provider() string { return p.name }
func (p *planned) Model() string    { return p.name + "-1" }

func (p *planned) calls() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.at)
}

func (p *planned) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		p.mu.Lock()
		step := p.plan[min(len(p.at), len(p.plan)-1)]
		p.at = append(p.at, time.Since(p.start))
		p.sys = append(p.sys, req.System)
		p.mu.Unlock()
		fail := func(retryable bool) {
			yield(agents.Event{}, &agents.ProviderError{Provider: p.name, Op: "stream", Status: 503, Retryable: retryable, Err: errUpstream})
		}
		switch step {
		case "ok":
			yield(agents.Event{Text: p.name, FinishReason: "stop"}, nil)
		case "retry":
			fail(true)
		case "fatal":
			fail(false)
		case "partial":
			if yield(agents.Event{Text: "half"}, nil) {
				fail(true)
			}
		case "hang":
			<-ctx.Done()
			yield(agents.Event{}, context.Cause(ctx))
		}
	}
}

func generate(m agents.ChatModel) (string, error) {
	return agents.Generate(context.Background(), m, agents.Request{System: "sys", Messages: []agents.Message{{Role: agents.RoleUser, Content: "x"}}})
}

const ms = time.Millisecond

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy agents.RetryPolicy
		plan   []string
		text   string
		err    bool
		at     []time.Duration
	}{
		{"recovers", agents.RetryPolicy{}, []string{"retry", "retry", "ok"}, "p", false, []time.Duration{0, 200 * ms, 600 * ms}},
		{"gives up", agents.RetryPolicy{Max: 3, Base: 100 * ms}, []string{"retry"}, "", true, []time.Duration{0, 100 * ms, 300 * ms, 700 * ms}},
		{"capped", agents.RetryPolicy{Max: 3, Base: time.Second, Cap: 1500 * ms}, []string{"retry"}, "", true, []time.Duration{0, time.Second, 2500 * ms, 4000 * ms}},
		{"not retryable", agents.RetryPolicy{}, []string{"fatal", "ok"}, "", true, []time.Duration{0}},
		{"after output", agents.RetryPolicy{}, []string{"partial", "ok"}, "half", true, []time.Duration{0}},
		{"disabled", agents.RetryPolicy{Max: -1}, []string{"retry", "ok"}, "", true, []time.Duration{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPlanned("p", tc.plan...)
				text, err := generate(agents.Chain(p, agents.WithRetry(tc.policy)))
				if text != tc.text || (err != nil) != tc.err {
					t.Fatalf("Generate = %q, %v", text, err)
				}
				if err != nil && !errors.Is(err, errUpstream) {
					t.Fatalf("err %v does not wrap the provider's", err)
				}
				if got := p.calls(); !slices.Equal(got, tc.at) {
					t.Fatalf("calls at %v, want %v", got, tc.at)
				}
			})
		})
	}
}

func TestRetryStopsWaitingOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPlanned("p", "retry")
		stop := errors.New("barge-in")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(100*ms, func() { cancel(stop) })
		start := time.Now()
		_, err := agents.Generate(ctx, agents.Chain(p, agents.WithRetry(agents.RetryPolicy{Base: time.Second})), agents.Request{})
		if !errors.Is(err, stop) || time.Since(start) != 100*ms || len(p.calls()) != 1 {
			t.Fatalf("err %v after %v, %d calls", err, time.Since(start), len(p.calls()))
		}
	})
}

func TestBackoffJitter(t *testing.T) {
	p := agents.RetryPolicy{Base: 100 * ms, Cap: time.Second, Jitter: 0.5}
	for n, full := range []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Backoff(n)
			if d > full || d < full/2 {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", n, d, full/2, full)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("Backoff(%d) never varies: %v", n, seen)
		}
	}
	if d := (agents.RetryPolicy{}).Backoff(40); d != 5*time.Second {
		t.Fatalf("default cap: %v", d)
	}
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPlanned("p", "hang", "hang", "ok")
		m := agents.Chain(p, agents.WithRetry(agents.RetryPolicy{Base: 100 * ms}), agents.WithTimeout(2*time.Second))
		text, err := generate(m)
		if err != nil || text != "p" {
			t.Fatalf("Generate = %q, %v", text, err)
		}
		if got, want := p.calls(), []time.Duration{0, 2100 * ms, 4300 * ms}; !slices.Equal(got, want) {
			t.Fatalf("calls at %v, want %v", got, want)
		}

		// Alone, the timeout is a retryable provider error.
		p = newPlanned("p", "hang")
		start := time.Now()
		_, err = generate(agents.Chain(p, agents.WithTimeout(time.Second)))
		var pe *agents.ProviderError
		if !errors.As(err, &pe) || !pe.Retryable || pe.Provider != "p" || !errors.Is(err, agents.ErrModelTimeout) || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}

		// The caller's cancellation is not a timeout.
		stop := errors.New("barge-in")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(100*ms, func() { cancel(stop) })
		_, err = agents.Generate(ctx, agents.Chain(newPlanned("p", "hang"), agents.WithTimeout(time.Second)), agents.Request{})
		if !errors.Is(err, stop) || errors.Is(err, agents.ErrModelTimeout) {
			t.Fatalf("cancelled: %v", err)
		}
	})
}

func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name            string
		primary, backup string
		text            string
		err             bool
		backupCalls     int
	}{
		{"primary fine", "ok", "ok", "primary", false, 0},
		{"primary down", "retry", "ok", "backup", false, 1},
		{"bad request", "fatal", "ok", "", true, 0},
		{"after output", "partial", "ok", "half", true, 0},
		{"all down", "retry", "retry", "", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, backup := newPlanned("primary", tc.primary), newPlanned("backup", tc.backup)
			m := agents.Chain(primary, agents.WithFailover(backup))
			text, err := generate(m)
			if text != tc.text || (err != nil) != tc.err || len(backup.calls()) != tc.backupCalls {
				t.Fatalf("Generate = %q, %v; backup called %d times", text, err, len(backup.calls()))
			}
			if tc.name == "all down" && !agents.IsRetryable(err) {
				t.Fatalf("joined error is not retryable: %v", err)
			}
			if tc.backupCalls > 0 && backup.sys[0] != "sys" {
				t.Fatalf("backup asked %q", backup.sys)
			}
			if mi, ok := m.(agents.ModelInfo); !ok || mi.Provider() != "primary" || mi.Model() != "primary-1" {
				t.Fatal("wrapped model does not name the primary")
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPlanned("p", "retry", "fatal", "retry", "retry", "retry", "retry", "ok", "ok")
		m := agents.Chain(p, agents.WithCircuitBreaker(agents.BreakerConfig{Failures: 3, Cooldown: 10 * time.Second}))
		call := func() error { _, err := generate(m); return err }

		// retry, fatal (not the provider's health), retry, retry: open.
		for range 4 {
			if err := call(); errors.Is(err, agents.ErrCircuitOpen) {
				t.Fatal("opened too early")
			}
		}
		err := call()
		if !errors.Is(err, agents.ErrCircuitOpen) || !agents.IsRetryable(err) || len(p.calls()) != 4 {
			t.Fatalf("open: %v, %d calls", err, len(p.calls()))
		}
		time.Sleep(9 * time.Second)
		if err := call(); !errors.Is(err, agents.ErrCircuitOpen) {
			t.Fatalf("still cooling down: %v", err)
		}
		// Half-open: one probe, which fails: open again for a full cooldown.
		time.Sleep(time.Second)
		if err := call(); err == nil || errors.Is(err, agents.ErrCircuitOpen) || len(p.calls()) != 5 {
			t.Fatalf("probe: %v, %d calls", err, len(p.calls()))
		}
		time.Sleep(5 * time.Second)
		if err := call(); !errors.Is(err, agents.ErrCircuitOpen) {
			t.Fatalf("after failed probe: %v", err)
		}
		time.Sleep(5 * time.Second)
		if err := call(); err == nil || errors.Is(err, agents.ErrCircuitOpen) {
			t.Fatalf("second probe: %v", err) // plan: retry
		}
		time.Sleep(10 * time.Second)
		if err := call(); err != nil { // plan: ok
			t.Fatalf("third probe: %v", err)
		}
		if err := call(); err != nil {
			t.Fatalf("closed again: %v", err)
		}
	})
}

func TestCircuitBreakerOneProbeAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPlanned("p", "retry", "hang")
		m := agents.Chain(p, agents.WithCircuitBreaker(agents.BreakerConfig{Failures: 1, Cooldown: time.Second}))
		if _, err := generate(m); errors.Is(err, agents.ErrCircuitOpen) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := agents.Generate(ctx, m, agents.Request{}); done <- err }()
		synctest.Wait() // the probe hangs in the model
		if _, err := generate(m); !errors.Is(err, agents.ErrCircuitOpen) {
			t.Fatalf("second call during the probe: %v", err)
		}
		cancel()
		<-done
		if n := len(p.calls()); n != 2 {
			t.Fatalf("%d calls reached the model, want 2", n)
		}
	})
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) agents.Middleware {
		return func(next agents.ChatModel) agents.ChatModel {
			return agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
				order = append(order, name)
				return next.Stream(ctx, req)
			})
		}
	}
	if _, err := generate(agents.Chain(newPlanned("p", "ok"), mw("outer"), mw("inner"))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"outer", "inner"}) {
		t.Fatalf("order %v", order)
	}
}

// A full stack under an agent: the primary times out, the retry gives up on
// it, failover answers.
func TestMiddlewareUnderAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		primary, backup := newPlanned("primary", "hang"), newPlanned("backup", "ok")
		model := agents.Chain(
			agents.Chain(primary, agents.WithRetry(agents.RetryPolicy{Max: 1, Base: 100 * ms}), agents.WithTimeout(time.Second)),
			agents.WithFailover(backup),
		)
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model})
		start := time.Now()
		text, err := agents.Collect(context.Background(), a, agents.UserInput("x"))
		if err != nil || text != "backup" || time.Since(start) != 2100*ms || len(primary.calls()) != 2 {
			t.Fatalf("Collect = %q, %v after %v, %d primary calls", text, err, time.Since(start), len(primary.calls()))
		}
	})
}
