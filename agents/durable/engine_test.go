package durable

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRegisterRejects(t *testing.T) {
	run := func(context.Context, *RunContext) (json.RawMessage, error) { return nil, nil }
	tests := []struct {
		name string
		wf   Workflow
		want error
	}{
		{"no name", Workflow{Steps: []Step{{Name: "a", Run: run}}}, ErrInvalidWorkflow},
		{"no steps", Workflow{Name: "w"}, ErrInvalidWorkflow},
		{"unnamed step", Workflow{Name: "w", Steps: []Step{{Run: run}}}, ErrInvalidWorkflow},
		{"no Run", Workflow{Name: "w", Steps: []Step{{Name: "a"}}}, ErrInvalidWorkflow},
		{"duplicate step", Workflow{Name: "w", Steps: []Step{{Name: "a", Run: run}, {Name: "a", Run: run}}}, ErrInvalidWorkflow},
		{"duplicate workflow", Workflow{Name: "taken", Steps: []Step{{Name: "a", Run: run}}}, ErrDuplicate},
	}
	e := newEngine(t, boltBackend().new(t)(), nil, nil, Workflow{Name: "taken", Steps: []Step{{Name: "a", Run: run}}})
	for _, tc := range tests {
		if err := e.Register(tc.wf); !errors.Is(err, tc.want) {
			t.Errorf("%s: Register = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		p       RetryPolicy
		attempt int
		want    time.Duration
	}{
		{RetryPolicy{}, 1, time.Second},
		{RetryPolicy{}, 3, 4 * time.Second},
		{RetryPolicy{}, 40, time.Minute},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 1, 100 * time.Millisecond},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 4, 800 * time.Millisecond},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 5, time.Second},
		{RetryPolicy{Backoff: time.Hour, MaxBackoff: time.Minute}, 1, time.Minute},
	}
	for _, tc := range tests {
		if got := tc.p.delay(tc.attempt); got != tc.want {
			t.Errorf("%+v.delay(%d) = %v, want %v", tc.p, tc.attempt, got, tc.want)
		}
	}
	if got := (RetryPolicy{}).attempts(); got != 1 {
		t.Errorf("zero policy allows %d attempts, want 1", got)
	}
}

func TestPanicIsRetried(t *testing.T) {
	checkGoroutines(t)
	clk := newFakeClock()
	var c counter
	wf := Workflow{Name: "p", Steps: []Step{{
		Name: "p", Retry: RetryPolicy{MaxAttempts: 2, Backoff: time.Second},
		Run: Func(func(_ context.Context, r *RunContext) (string, error) {
			c.hit(r)
			if r.Attempt() == 1 {
				panic("boom")
			}
			return "ok", nil
		}),
	}}}
	e := newEngine(t, boltBackend().new(t)(), clk, nil, wf)
	id, err := e.Start(context.Background(), "p", nil)
	must(t, err)
	clk.waitTimer(t, clk.Now().Add(time.Second))
	info, err := e.Status(context.Background(), id)
	must(t, err)
	if !strings.Contains(info.Steps[0].LastError, "panicked: boom") {
		t.Errorf("last error = %q, want the panic", info.Steps[0].LastError)
	}
	clk.Advance(time.Second)
	if got := string(mustWait(t, e, id)); got != `"ok"` || c.count("p") != 2 {
		t.Errorf("result %s after %d runs", got, c.count("p"))
	}
}

func TestDefinitionChanged(t *testing.T) {
	checkGoroutines(t)
	open := boltBackend().new(t)
	entered := make(chan string, 1)
	var c counter
	e1 := newEngine(t, open(), nil, nil, blockingWorkflow(&c, entered, nil))
	id, err := e1.Start(context.Background(), "block", nil)
	must(t, err)
	<-entered
	e1.Close()
	changed := blockingWorkflow(&c, entered, nil)
	changed.Steps[2].Name = "renamed"
	e2 := newEngine(t, open(), nil, nil, changed)
	_, err = e2.Resume(context.Background())
	must(t, err)
	if _, err := e2.Wait(waitCtx(t), id); !errors.Is(err, ErrRunFailed) || !strings.Contains(err.Error(), ErrDefinitionChange.Error()) {
		t.Errorf("Wait = %v, want a failure for the changed definition", err)
	}
}

func TestResumeSkipsUnregistered(t *testing.T) {
	open := boltBackend().new(t)
	ctx := context.Background()
	wf := Workflow{Name: "w", Steps: []Step{{Name: "a", Run: func(ctx context.Context, r *RunContext) (json.RawMessage, error) {
		return r.WaitSignal(ctx, "go")
	}}}}
	e1 := newEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(ctx, "w", nil)
	must(t, err)
	e1.Close()
	e2 := newEngine(t, open(), nil, nil)
	if n, err := e2.Resume(ctx); n != 0 || err != nil {
		t.Errorf("Resume = %d, %v; want 0 runs (workflow not registered)", n, err)
	}
	if info, _ := e2.Status(ctx, id); info.Status != StatusRunning {
		t.Errorf("status = %s, want still running", info.Status)
	}
}

func TestStartTool(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	clk := newFakeClock()
	var n notes
	e := newEngine(t, boltBackend().new(t)(), clk, n.add, Returns(ReturnsConfig{AutoApprove: time.Minute}))
	tool := StartTool(e, ReturnsWorkflowName, "Start a product return.")
	var started []string
	tool.OnStart = func(_ context.Context, id string) { started = append(started, id) }
	spec := tool.Spec()
	if spec.Name != "start_returns" || spec.Description != "Start a product return." || !strings.Contains(string(spec.Parameters), `"order_id"`) {
		t.Errorf("spec = %+v", spec)
	}
	if s := StartTool(e, "my flow!", "x").Spec(); s.Name != "start_my_flow_" || string(s.Parameters) != `{"type":"object"}` {
		t.Errorf("spec of an unregistered workflow = %+v", s)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{`, `null`} {
		if _, err := tool.Call(ctx, json.RawMessage(bad)); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Call(%s) = %v, want ErrInvalidInput", bad, err)
		}
	}
	text, err := tool.Call(ctx, json.RawMessage(`{"order_id":"Z9","amount_cents":300}`))
	must(t, err)
	var got struct{ RunID, Workflow, Status string }
	dec := json.NewDecoder(strings.NewReader(text))
	must(t, dec.Decode(&got))
	if got.Workflow != "returns" || got.Status != "running" || len(started) != 1 || started[0] == "" {
		t.Fatalf("Call = %s (started %q)", text, started)
	}
	clk.waitTimer(t, clk.Now().Add(time.Minute))
	clk.Advance(time.Minute)
	mustWait(t, e, started[0])
	if len(n.got) != 1 || !strings.HasPrefix(n.got[0], started[0]+": Your return for order Z9 is approved") {
		t.Errorf("notifications = %q", n.got)
	}
}

// BenchmarkStep measures one checkpointed step (two fsynced writes: the
// attempt's start and its output) on the embedded store.
func BenchmarkStepBolt(b *testing.B) {
	s, err := OpenBolt(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchSteps(b, s)
}

func BenchmarkStepRedis(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: startRedis(b)})
	defer c.Close()
	benchSteps(b, NewRedis(c, "{bench}:"))
}

func benchSteps(b *testing.B, s Store) {
	const steps = 10
	wf := Workflow{Name: "bench"}
	for i := range steps {
		wf.Steps = append(wf.Steps, Step{Name: string(rune('a' + i)), Run: func(context.Context, *RunContext) (json.RawMessage, error) {
			return json.RawMessage(`{"ok":true}`), nil
		}})
	}
	e, err := New(s, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if err := e.Register(wf); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		id, err := e.Start(ctx, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Wait(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*steps), "µs/step")
}
