package durabletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// Opener opens handles on one store's data for a test: each call of the
// function it returns closes the previous handle and opens a new one on the
// same data, as a restarted process would. The test's cleanup closes the
// last one.
type Opener func(t *testing.T) func() durable.Store

// Run runs the conformance suite against a store: the durable.Store contract, and
// the durable.Engine's checkpoints, retries, timeouts, signals and durable timers
// over restarts (a new durable.Engine on a reopened store). Each store package
// runs it from its tests.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() durable.Store)
	}{
		{"StoreBasics", testStoreBasics},
		{"StepsAndOutputs", testStepsAndOutputs},
		{"ResumeSkipsCompletedSteps", testResumeSkipsCompleted},
		{"RetryBackoffIsDurable", testRetryBackoff},
		{"PermanentError", testPermanentError},
		{"StepTimeout", testStepTimeout},
		{"RunTimeoutSurvivesRestart", testRunTimeout},
		{"SignalWhileDown", testSignalWhileDown},
		{"SignalsConsumedOnce", testSignalsConsumedOnce},
		{"SleepSurvivesRestart", testSleepSurvivesRestart},
		{"Errors", testErrors},
		{"RegisterRejects", testRegisterRejects},
		{"PanicIsRetried", testPanicIsRetried},
		{"DefinitionChanged", testDefinitionChanged},
		{"ResumeSkipsUnregistered", testResumeSkipsUnregistered},
		{"StartWithIDIsIdempotent", testStartWithID},
		{"CancelRunning", testCancelRunning},
		{"CancelWhileDown", testCancelWhileDown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			CheckGoroutines(t)
			tc.fn(t, open(t))
		})
	}
}

// NewEngine returns an engine on s with clk (nil: real time) and notify,
// with wfs registered; the test's cleanup closes it.
func NewEngine(t *testing.T, s durable.Store, clk durable.Clock, notify func(string, string), wfs ...durable.Workflow) *durable.Engine {
	t.Helper()
	e, err := durable.New(s, durable.Options{Clock: clk, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for _, wf := range wfs {
		if err := e.Register(wf); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// WaitCtx returns a context that bounds a test's waits (30 s).
func WaitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// MustWait waits for run id's result, failing the test on error.
func MustWait(t *testing.T, e *durable.Engine, id string) json.RawMessage {
	t.Helper()
	out, err := e.Wait(WaitCtx(t), id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return out
}

// counter records how often each step ran and the keys it saw.
type counter struct {
	mu   sync.Mutex
	runs map[string]int
	keys map[string][]string
}

func (c *counter) hit(r *durable.RunContext) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs, c.keys = map[string]int{}, map[string][]string{}
	}
	c.runs[r.Step()]++
	c.keys[r.Step()] = append(c.keys[r.Step()], r.IdempotencyKey())
}

func (c *counter) count(step string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[step]
}

func testStoreBasics(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	s := open()
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, durable.ErrNotFound) {
		t.Fatalf("GetRun(unknown) = %v, want durable.ErrNotFound", err)
	}
	if err := s.AppendSignal(ctx, "nope", []byte(`{}`)); !errors.Is(err, durable.ErrNotFound) {
		t.Fatalf("AppendSignal(unknown) = %v, want durable.ErrNotFound", err)
	}
	must(t, s.PutRun(ctx, "a", []byte(`{"x":1}`), false))
	must(t, s.PutRun(ctx, "b", []byte(`{"x":2}`), false))
	must(t, s.PutRun(ctx, "b", []byte(`{"x":3}`), true))
	for i := range 3 {
		must(t, s.AppendSignal(ctx, "a", fmt.Appendf(nil, `{"n":%d}`, i)))
	}
	s = open() // what was written survives a reopen
	got, err := s.GetRun(ctx, "b")
	must(t, err)
	if string(got) != `{"x":3}` {
		t.Errorf("GetRun(b) = %s, want the last write", got)
	}
	ids, err := s.ActiveRuns(ctx)
	must(t, err)
	if !slices.Equal(ids, []string{"a"}) {
		t.Errorf("ActiveRuns = %q, want [a]", ids)
	}
	sigs, err := s.Signals(ctx, "a")
	must(t, err)
	var texts []string
	for _, s := range sigs {
		texts = append(texts, string(s))
	}
	if want := []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}; !slices.Equal(texts, want) {
		t.Errorf("Signals = %q, want %q", texts, want)
	}
	if sigs, err := s.Signals(ctx, "b"); err != nil || len(sigs) != 0 {
		t.Errorf("Signals(b) = %q, %v; want none", sigs, err)
	}
	must(t, s.PutRun(ctx, "a", []byte(`{}`), true))
	if ids, err := s.ActiveRuns(ctx); err != nil || len(ids) != 0 {
		t.Errorf("ActiveRuns after finishing = %q, %v; want none", ids, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testStepsAndOutputs(t *testing.T, open func() durable.Store) {
	wf := durable.Workflow{Name: "sum", Steps: []durable.Step{
		{Name: "double", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (int, error) {
			var in struct{ N int }
			if err := r.DecodeInput(&in); err != nil {
				return 0, err
			}
			return in.N * 2, nil
		})},
		{Name: "add", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (int, error) {
			var d int
			err := r.DecodeOutput("double", &d)
			return d + 1, err
		})},
		{Name: "describe", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (string, error) {
			var d, a int
			if err := r.DecodeOutput("double", &d); err != nil {
				return "", err
			}
			if err := r.DecodeOutput("add", &a); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s/%s: %d then %d", r.Workflow(), r.Step(), d, a), nil
		})},
	}}
	e := NewEngine(t, open(), nil, nil, wf)
	id, err := e.Start(context.Background(), "sum", map[string]int{"N": 20})
	must(t, err)
	if got := string(MustWait(t, e, id)); got != `"sum/describe: 40 then 41"` {
		t.Errorf("result = %s", got)
	}
	info, err := e.Status(context.Background(), id)
	must(t, err)
	if info.Status != durable.StatusCompleted || info.Step != "" || len(info.Steps) != 3 {
		t.Fatalf("status = %+v", info)
	}
	for _, s := range info.Steps {
		if !s.Completed || s.Attempts != 1 || s.Resumes != 0 {
			t.Errorf("step %+v, want completed in one attempt", s)
		}
	}
	res, err := e.Result(context.Background(), id)
	if err != nil || string(res) != `"sum/describe: 40 then 41"` {
		t.Errorf("Result = %s, %v", res, err)
	}
}

// blockingWorkflow's step "slow" signals entered and then blocks until its
// context ends or release is closed.
func blockingWorkflow(c *counter, entered chan<- string, release <-chan struct{}) durable.Workflow {
	return durable.Workflow{Name: "block", Steps: []durable.Step{
		{Name: "first", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (string, error) {
			c.hit(r)
			return "one", nil
		})},
		{Name: "slow", Run: durable.Func(func(ctx context.Context, r *durable.RunContext) (string, error) {
			c.hit(r)
			entered <- r.IdempotencyKey()
			select {
			case <-ctx.Done():
				return "", context.Cause(ctx)
			case <-release:
			}
			var first string
			err := r.DecodeOutput("first", &first)
			return first + "+two", err
		})},
		{Name: "last", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (string, error) {
			c.hit(r)
			var slow string
			err := r.DecodeOutput("slow", &slow)
			return slow + "+three", err
		})},
	}}
}

func testResumeSkipsCompleted(t *testing.T, open func() durable.Store) {
	var c counter
	entered := make(chan string, 2)
	release := make(chan struct{})
	wf := blockingWorkflow(&c, entered, release)
	e1 := NewEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(context.Background(), "block", nil)
	must(t, err)
	key1 := <-entered
	e1.Close() // the "crash": nothing more is recorded

	e2 := NewEngine(t, open(), nil, nil, wf)
	n, err := e2.Resume(context.Background())
	must(t, err)
	if n != 1 {
		t.Fatalf("Resume resumed %d runs, want 1", n)
	}
	key2 := <-entered
	close(release)
	if got := string(MustWait(t, e2, id)); got != `"one+two+three"` {
		t.Errorf("result = %s", got)
	}
	if c.count("first") != 1 || c.count("slow") != 2 || c.count("last") != 1 {
		t.Errorf("runs = %v, want first 1, slow 2 (interrupted, re-run), last 1", c.runs)
	}
	if key1 != key2 || key1 != id+"/slow/1" {
		t.Errorf("idempotency keys %q and %q, want both %q", key1, key2, id+"/slow/1")
	}
	info, err := e2.Status(context.Background(), id)
	must(t, err)
	if s := info.Steps[1]; s.Attempts != 1 || s.Resumes != 1 {
		t.Errorf("slow step = %+v, want attempt 1 resumed once", s)
	}
	if n, _ := e2.Resume(context.Background()); n != 0 {
		t.Errorf("second Resume resumed %d runs, want 0", n)
	}
}

func testStartWithID(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	var c counter
	entered := make(chan string, 1)
	release := make(chan struct{})
	wf := blockingWorkflow(&c, entered, release)
	other := durable.Workflow{Name: "other", Steps: []durable.Step{{Name: "x", Run: durable.Func(func(context.Context, *durable.RunContext) (int, error) { return 1, nil })}}}
	e := NewEngine(t, open(), nil, nil, wf, other)
	created, err := e.StartWithID(ctx, "order-42", "block", json.RawMessage(`{"a":1,"b":[2]}`))
	must(t, err)
	if !created {
		t.Fatal("first StartWithID: created = false")
	}
	<-entered
	// The same input, written differently: the same run.
	created, err = e.StartWithID(ctx, "order-42", "block", map[string]any{"b": []int{2}, "a": 1})
	if err != nil || created {
		t.Fatalf("repeat StartWithID = %v, %v; want not created, no error", created, err)
	}
	if _, err := e.StartWithID(ctx, "order-42", "block", map[string]int{"a": 2}); !errors.Is(err, durable.ErrConflict) {
		t.Errorf("StartWithID with another input = %v, want ErrConflict", err)
	}
	if _, err := e.StartWithID(ctx, "order-42", "other", json.RawMessage(`{"a":1,"b":[2]}`)); !errors.Is(err, durable.ErrConflict) {
		t.Errorf("StartWithID of another workflow = %v, want ErrConflict", err)
	}
	for _, bad := range []string{"", "a/b", "sp ace", strings.Repeat("x", 129)} {
		if _, err := e.StartWithID(ctx, bad, "block", nil); !errors.Is(err, durable.ErrInvalidID) {
			t.Errorf("StartWithID(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
	close(release)
	if got := string(MustWait(t, e, "order-42")); got != `"one+two+three"` {
		t.Errorf("result = %s", got)
	}
	if c.count("first") != 1 || c.count("slow") != 1 {
		t.Errorf("runs = %v, want each step once", c.runs)
	}
	// A finished run's ID still answers for it.
	created, err = e.StartWithID(ctx, "order-42", "block", json.RawMessage(`{"b":[2],"a":1}`))
	if err != nil || created {
		t.Errorf("StartWithID after the end = %v, %v; want not created", created, err)
	}
}

func testCancelRunning(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	var c counter
	entered := make(chan string, 1)
	wf := blockingWorkflow(&c, entered, make(chan struct{}))
	e := NewEngine(t, open(), nil, nil, wf)
	id, err := e.Start(ctx, "block", nil)
	must(t, err)
	<-entered
	must(t, e.Cancel(WaitCtx(t), id))
	if _, err := e.Wait(WaitCtx(t), id); !errors.Is(err, durable.ErrCancelled) {
		t.Errorf("Wait = %v, want ErrCancelled", err)
	}
	info, err := e.Status(ctx, id)
	must(t, err)
	if info.Status != durable.StatusCancelled || info.Steps[1].Completed || info.Steps[2].Attempts != 0 {
		t.Errorf("status = %+v, want cancelled in step slow", info)
	}
	if err := e.Cancel(ctx, id); !errors.Is(err, durable.ErrRunFinished) {
		t.Errorf("second Cancel = %v, want ErrRunFinished", err)
	}
	if err := e.Signal(ctx, id, "x", nil); !errors.Is(err, durable.ErrRunFinished) {
		t.Errorf("Signal after Cancel = %v, want ErrRunFinished", err)
	}
	if err := e.Cancel(ctx, "nope"); !errors.Is(err, durable.ErrNotFound) {
		t.Errorf("Cancel(unknown) = %v, want ErrNotFound", err)
	}
	if n, _ := e.Resume(ctx); n != 0 {
		t.Errorf("Resume after Cancel resumed %d runs", n)
	}
}

func testCancelWhileDown(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	var c counter
	entered := make(chan string, 2)
	wf := blockingWorkflow(&c, entered, make(chan struct{}))
	e1 := NewEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(ctx, "block", nil)
	must(t, err)
	<-entered
	e1.Close()
	e2 := NewEngine(t, open(), nil, nil, wf)
	must(t, e2.Cancel(ctx, id))
	if n, err := e2.Resume(ctx); n != 0 || err != nil {
		t.Errorf("Resume after Cancel = %d, %v; want nothing resumed", n, err)
	}
	if _, err := e2.Result(ctx, id); !errors.Is(err, durable.ErrCancelled) {
		t.Errorf("Result = %v, want ErrCancelled", err)
	}
	if c.count("slow") != 1 {
		t.Errorf("slow ran %d times, want 1", c.count("slow"))
	}
}

func testRetryBackoff(t *testing.T, open func() durable.Store) {
	clk := NewFakeClock()
	var c counter
	wf := durable.Workflow{Name: "flaky", Steps: []durable.Step{{
		Name:  "call",
		Retry: durable.RetryPolicy{MaxAttempts: 4, Backoff: time.Second, MaxBackoff: 3 * time.Second},
		Run: durable.Func(func(_ context.Context, r *durable.RunContext) (int, error) {
			c.hit(r)
			if r.Attempt() < 4 {
				return 0, fmt.Errorf("try %d failed", r.Attempt())
			}
			return r.Attempt(), nil
		}),
	}}}
	t0 := clk.Now()
	e1 := NewEngine(t, open(), clk, nil, wf)
	id, err := e1.Start(context.Background(), "flaky", nil)
	must(t, err)
	clk.WaitTimer(t, t0.Add(time.Second)) // after attempt 1: 1 s
	clk.Advance(time.Second)
	clk.WaitTimer(t, t0.Add(3*time.Second)) // after attempt 2: 2 s
	e1.Close()

	// The retry time is stored: a restart waits only for the rest.
	clk.Advance(500 * time.Millisecond)
	e2 := NewEngine(t, open(), clk, nil, wf)
	_, err = e2.Resume(context.Background())
	must(t, err)
	clk.WaitTimer(t, t0.Add(3*time.Second))
	clk.Advance(1500 * time.Millisecond)
	clk.WaitTimer(t, t0.Add(6*time.Second)) // after attempt 3: 4 s capped at 3 s
	clk.Advance(3 * time.Second)
	if got := string(MustWait(t, e2, id)); got != "4" {
		t.Errorf("result = %s, want 4", got)
	}
	want := []string{id + "/call/1", id + "/call/2", id + "/call/3", id + "/call/4"}
	if !slices.Equal(c.keys["call"], want) {
		t.Errorf("keys = %q, want %q", c.keys["call"], want)
	}
	info, err := e2.Status(context.Background(), id)
	must(t, err)
	if s := info.Steps[0]; s.Attempts != 4 || s.LastError != "" || !s.Completed {
		t.Errorf("step = %+v, want completed at attempt 4", s)
	}
}

func testPermanentError(t *testing.T, open func() durable.Store) {
	var c counter
	wf := durable.Workflow{Name: "perm", Steps: []durable.Step{
		{Name: "bad", Retry: durable.RetryPolicy{MaxAttempts: 5}, Run: func(_ context.Context, r *durable.RunContext) (json.RawMessage, error) {
			c.hit(r)
			return nil, durable.Permanent(errors.New("card declined"))
		}},
		{Name: "never", Run: func(_ context.Context, r *durable.RunContext) (json.RawMessage, error) {
			c.hit(r)
			return nil, nil
		}},
	}}
	e := NewEngine(t, open(), nil, nil, wf)
	id, err := e.Start(context.Background(), "perm", nil)
	must(t, err)
	_, err = e.Wait(WaitCtx(t), id)
	if !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), "step bad: card declined") {
		t.Fatalf("Wait = %v, want durable.ErrRunFailed for step bad", err)
	}
	if c.count("bad") != 1 || c.count("never") != 0 {
		t.Errorf("runs = %v, want bad once, never not at all", c.runs)
	}
	info, _ := e.Status(context.Background(), id)
	if info.Status != durable.StatusFailed || info.Steps[0].LastError != "card declined" {
		t.Errorf("status = %+v", info)
	}
}

func testStepTimeout(t *testing.T, open func() durable.Store) {
	clk := NewFakeClock()
	var c counter
	wf := durable.Workflow{Name: "hang", Steps: []durable.Step{{
		Name: "hang", Timeout: 5 * time.Second,
		Retry: durable.RetryPolicy{MaxAttempts: 2, Backoff: time.Second},
		Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
			c.hit(r)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}}}
	t0 := clk.Now()
	e := NewEngine(t, open(), clk, nil, wf)
	id, err := e.Start(context.Background(), "hang", nil)
	must(t, err)
	clk.WaitTimer(t, t0.Add(5*time.Second))
	clk.Advance(5 * time.Second)
	clk.WaitTimer(t, t0.Add(6*time.Second)) // backoff
	clk.Advance(time.Second)
	clk.WaitTimer(t, t0.Add(11*time.Second)) // second attempt's timeout
	clk.Advance(5 * time.Second)
	_, err = e.Wait(WaitCtx(t), id)
	if !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), durable.ErrStepTimeout.Error()) {
		t.Fatalf("Wait = %v, want a failed run with a step timeout", err)
	}
	if c.count("hang") != 2 {
		t.Errorf("step ran %d times, want 2", c.count("hang"))
	}
}

func testRunTimeout(t *testing.T, open func() durable.Store) {
	clk := NewFakeClock()
	wf := durable.Workflow{Name: "slow", Timeout: 10 * time.Second, Steps: []durable.Step{{
		Name: "wait",
		Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
			p, err := r.WaitSignal(ctx, "never")
			return p, err
		},
	}}}
	t0 := clk.Now()
	e1 := NewEngine(t, open(), clk, nil, wf)
	id, err := e1.Start(context.Background(), "slow", nil)
	must(t, err)
	clk.WaitTimer(t, t0.Add(10*time.Second))
	clk.Advance(4 * time.Second)
	e1.Close()

	e2 := NewEngine(t, open(), clk, nil, wf)
	_, err = e2.Resume(context.Background())
	must(t, err)
	clk.WaitTimer(t, t0.Add(10*time.Second)) // the stored deadline, not a new one
	clk.Advance(6 * time.Second)
	_, err = e2.Wait(WaitCtx(t), id)
	if !errors.Is(err, durable.ErrRunTimeout) {
		t.Fatalf("Wait = %v, want durable.ErrRunTimeout", err)
	}
	info, _ := e2.Status(context.Background(), id)
	if info.Status != durable.StatusTimedOut {
		t.Errorf("status = %s, want timed_out", info.Status)
	}
}

func testSignalWhileDown(t *testing.T, open func() durable.Store) {
	var c counter
	entered := make(chan string, 2)
	wf := durable.Workflow{Name: "approve", Steps: []durable.Step{{
		Name: "wait",
		Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
			c.hit(r)
			entered <- r.Step()
			return r.WaitSignal(ctx, "approval")
		},
	}}}
	e1 := NewEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(context.Background(), "approve", nil)
	must(t, err)
	<-entered
	e1.Close()

	// Nothing runs the workflow: the signal is stored.
	e2 := NewEngine(t, open(), nil, nil, wf)
	must(t, e2.Signal(context.Background(), id, "other", "ignored"))
	must(t, e2.Signal(context.Background(), id, "approval", map[string]string{"by": "ann"}))
	_, err = e2.Resume(context.Background())
	must(t, err)
	if got := string(MustWait(t, e2, id)); got != `{"by":"ann"}` {
		t.Errorf("result = %s", got)
	}
	if err := e2.Signal(context.Background(), id, "approval", 1); !errors.Is(err, durable.ErrRunFinished) {
		t.Errorf("Signal after finish = %v, want durable.ErrRunFinished", err)
	}
}

func testSignalsConsumedOnce(t *testing.T, open func() durable.Store) {
	entered := make(chan string, 4)
	wait := func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		entered <- r.Step()
		return r.WaitSignal(ctx, "x")
	}
	wf := durable.Workflow{Name: "two", Steps: []durable.Step{
		{Name: "a", Run: wait},
		{Name: "b", Run: wait},
		{Name: "both", Run: durable.Func(func(_ context.Context, r *durable.RunContext) ([]json.RawMessage, error) {
			a, _ := r.Output("a")
			b, _ := r.Output("b")
			return []json.RawMessage{a, b}, nil
		})},
	}}
	e1 := NewEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(context.Background(), "two", nil)
	must(t, err)
	if s := <-entered; s != "a" {
		t.Fatalf("entered %s first", s)
	}
	must(t, e1.Signal(context.Background(), id, "x", 1))
	if s := <-entered; s != "b" {
		t.Fatalf("entered %s second", s)
	}
	e1.Close() // b is waiting; signal 1 belongs to completed step a

	e2 := NewEngine(t, open(), nil, nil, wf)
	must(t, e2.Signal(context.Background(), id, "x", 2))
	_, err = e2.Resume(context.Background())
	must(t, err)
	if got := string(MustWait(t, e2, id)); got != `[1,2]` {
		t.Errorf("result = %s, want [1,2]", got)
	}
}

func testSleepSurvivesRestart(t *testing.T, open func() durable.Store) {
	clk := NewFakeClock()
	var c counter
	wf := durable.Workflow{Name: "nap", Steps: []durable.Step{{
		Name: "nap",
		Run: durable.Func(func(ctx context.Context, r *durable.RunContext) (string, error) {
			c.hit(r)
			if err := r.Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			if err := r.Sleep(ctx, time.Minute); err != nil {
				return "", err
			}
			return "rested", nil
		}),
	}}}
	t0 := clk.Now()
	e1 := NewEngine(t, open(), clk, nil, wf)
	id, err := e1.Start(context.Background(), "nap", nil)
	must(t, err)
	clk.WaitTimer(t, t0.Add(time.Hour))
	clk.Advance(40 * time.Minute)
	e1.Close()
	clk.Advance(5 * time.Minute) // "down" for 5 minutes

	e2 := NewEngine(t, open(), clk, nil, wf)
	_, err = e2.Resume(context.Background())
	must(t, err)
	clk.WaitTimer(t, t0.Add(time.Hour)) // 15 minutes left, not a new hour
	clk.Advance(15 * time.Minute)
	clk.WaitTimer(t, t0.Add(time.Hour+time.Minute))
	clk.Advance(time.Minute)
	if got := string(MustWait(t, e2, id)); got != `"rested"` {
		t.Errorf("result = %s", got)
	}
	if c.count("nap") != 2 {
		t.Errorf("step ran %d times, want 2 (interrupted once)", c.count("nap"))
	}
}

func testErrors(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan string, 1)
	var c counter
	e := NewEngine(t, open(), nil, nil, blockingWorkflow(&c, entered, release))
	if _, err := e.Start(ctx, "missing", nil); !errors.Is(err, durable.ErrUnknownWorkflow) {
		t.Errorf("Start(missing) = %v", err)
	}
	if _, err := e.Start(ctx, "block", json.RawMessage(`{`)); !errors.Is(err, durable.ErrInvalidInput) {
		t.Errorf("Start(bad JSON) = %v", err)
	}
	for _, f := range []func() error{
		func() error { _, err := e.Status(ctx, "run_x"); return err },
		func() error { _, err := e.Result(ctx, "run_x"); return err },
		func() error { _, err := e.Wait(ctx, "run_x"); return err },
		func() error { return e.Signal(ctx, "run_x", "s", nil) },
	} {
		if err := f(); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("on an unknown run: %v, want durable.ErrNotFound", err)
		}
	}
	id, err := e.Start(ctx, "block", nil)
	must(t, err)
	<-entered
	if _, err := e.Result(ctx, id); !errors.Is(err, durable.ErrNotFinished) {
		t.Errorf("Result while running = %v", err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Wait(short, id); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(cancelled) = %v", err)
	}
	if info, _ := e.Status(ctx, id); info.Status != durable.StatusRunning || info.Step != "slow" {
		t.Errorf("status = %+v, want running at slow", info)
	}
	e.Close()
	if _, err := e.Start(ctx, "block", nil); !errors.Is(err, durable.ErrClosed) {
		t.Errorf("Start after Close = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func testRegisterRejects(t *testing.T, open func() durable.Store) {
	run := func(context.Context, *durable.RunContext) (json.RawMessage, error) { return nil, nil }
	tests := []struct {
		name string
		wf   durable.Workflow
		want error
	}{
		{"no name", durable.Workflow{Steps: []durable.Step{{Name: "a", Run: run}}}, durable.ErrInvalidWorkflow},
		{"no steps", durable.Workflow{Name: "w"}, durable.ErrInvalidWorkflow},
		{"unnamed step", durable.Workflow{Name: "w", Steps: []durable.Step{{Run: run}}}, durable.ErrInvalidWorkflow},
		{"no Run", durable.Workflow{Name: "w", Steps: []durable.Step{{Name: "a"}}}, durable.ErrInvalidWorkflow},
		{"duplicate step", durable.Workflow{Name: "w", Steps: []durable.Step{{Name: "a", Run: run}, {Name: "a", Run: run}}}, durable.ErrInvalidWorkflow},
		{"duplicate workflow", durable.Workflow{Name: "taken", Steps: []durable.Step{{Name: "a", Run: run}}}, durable.ErrDuplicate},
	}
	e := NewEngine(t, open(), nil, nil, durable.Workflow{Name: "taken", Steps: []durable.Step{{Name: "a", Run: run}}})
	for _, tc := range tests {
		if err := e.Register(tc.wf); !errors.Is(err, tc.want) {
			t.Errorf("%s: Register = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func testPanicIsRetried(t *testing.T, open func() durable.Store) {
	clk := NewFakeClock()
	var c counter
	wf := durable.Workflow{Name: "p", Steps: []durable.Step{{
		Name: "p", Retry: durable.RetryPolicy{MaxAttempts: 2, Backoff: time.Second},
		Run: durable.Func(func(_ context.Context, r *durable.RunContext) (string, error) {
			c.hit(r)
			if r.Attempt() == 1 {
				panic("boom")
			}
			return "ok", nil
		}),
	}}}
	e := NewEngine(t, open(), clk, nil, wf)
	id, err := e.Start(context.Background(), "p", nil)
	must(t, err)
	clk.WaitTimer(t, clk.Now().Add(time.Second))
	info, err := e.Status(context.Background(), id)
	must(t, err)
	if !strings.Contains(info.Steps[0].LastError, "panicked: boom") {
		t.Errorf("last error = %q, want the panic", info.Steps[0].LastError)
	}
	clk.Advance(time.Second)
	if got := string(MustWait(t, e, id)); got != `"ok"` || c.count("p") != 2 {
		t.Errorf("result %s after %d runs", got, c.count("p"))
	}
}

func testDefinitionChanged(t *testing.T, open func() durable.Store) {
	entered := make(chan string, 1)
	var c counter
	e1 := NewEngine(t, open(), nil, nil, blockingWorkflow(&c, entered, nil))
	id, err := e1.Start(context.Background(), "block", nil)
	must(t, err)
	<-entered
	e1.Close()
	changed := blockingWorkflow(&c, entered, nil)
	changed.Steps[2].Name = "renamed"
	e2 := NewEngine(t, open(), nil, nil, changed)
	_, err = e2.Resume(context.Background())
	must(t, err)
	if _, err := e2.Wait(WaitCtx(t), id); !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), durable.ErrDefinitionChange.Error()) {
		t.Errorf("Wait = %v, want a failure for the changed definition", err)
	}
}

func testResumeSkipsUnregistered(t *testing.T, open func() durable.Store) {
	ctx := context.Background()
	wf := durable.Workflow{Name: "w", Steps: []durable.Step{{Name: "a", Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		return r.WaitSignal(ctx, "go")
	}}}}
	e1 := NewEngine(t, open(), nil, nil, wf)
	id, err := e1.Start(ctx, "w", nil)
	must(t, err)
	e1.Close()
	e2 := NewEngine(t, open(), nil, nil)
	if n, err := e2.Resume(ctx); n != 0 || err != nil {
		t.Errorf("Resume = %d, %v; want 0 runs (workflow not registered)", n, err)
	}
	if info, _ := e2.Status(ctx, id); info.Status != durable.StatusRunning {
		t.Errorf("status = %s, want still running", info.Status)
	}
}

// BenchSteps measures one checkpointed step (two writes: the attempt's
// start and its output) on s, reported as µs/step.
func BenchSteps(b *testing.B, s durable.Store) {
	const steps = 10
	wf := durable.Workflow{Name: "bench"}
	for i := range steps {
		wf.Steps = append(wf.Steps, durable.Step{Name: string(rune('a' + i)), Run: func(context.Context, *durable.RunContext) (json.RawMessage, error) {
			return json.RawMessage(`{"ok":true}`), nil
		}})
	}
	e, err := durable.New(s, durable.Options{})
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
