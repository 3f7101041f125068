package temporal_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/declared"
	"github.com/voiced-dev/voiced/agents/durable/temporal"
	"github.com/voiced-dev/voiced/agents/durable/temporal/temporaltest"
)

// The worker-kill test re-executes the test binary as a worker process:
// with helperEnv set, TestMain runs the helper instead of the tests.
const (
	helperEnv  = "VOICED_TEMPORAL_HELPER" // the dev server's address
	queueEnv   = "VOICED_TEMPORAL_QUEUE"
	runEnv     = "VOICED_TEMPORAL_RUN"
	baseEnv    = "VOICED_TEMPORAL_BASE" // the test's HTTP endpoint
	heartbeatT = 2 * time.Second        // the engines' heartbeat timeout here
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		if err := helper(addr); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	temporaltest.StopShared()
	os.Exit(code)
}

func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var queues sync.Map

// queue returns a task queue of the test's own.
func queue(t *testing.T) string {
	q := "voiced-test-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + durable.NewRunID()[4:12]
	queues.Store(q, true)
	return q
}

func dial(t *testing.T, addr, queue string, notify func(string, string)) *temporal.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := temporal.Dial(ctx, temporal.Options{
		Address: addr, TaskQueue: queue, Logger: warnLogger(), Notify: notify,
		HeartbeatTimeout: heartbeatT, StickyTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// chargeTool is a fake tool that records the arguments it is sent.
type chargeTool struct {
	mu    sync.Mutex
	calls []string
	fail  int // fail this many calls first
}

func (c *chargeTool) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: "charge", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (c *chargeTool) Call(_ context.Context, args json.RawMessage) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, string(args))
	if len(c.calls) <= c.fail {
		return "", fmt.Errorf("card network busy (call %d)", len(c.calls))
	}
	var a struct {
		Amount float64 `json:"amount"`
		By     string  `json:"by"`
	}
	if err := json.Unmarshal(args, &a); err != nil || a.Amount <= 0 || a.By == "" {
		return "", durable.Permanent(fmt.Errorf("bad args %s", args))
	}
	return fmt.Sprintf(`{"charge_id":"ch_%d","amount":%v}`, len(c.calls), a.Amount), nil
}

func (c *chargeTool) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// waitStep polls the run's status until its current step is step.
func waitStep(t *testing.T, e *temporal.Engine, id, step string) durable.RunInfo {
	t.Helper()
	limit := time.Now().Add(60 * time.Second)
	for {
		info, err := e.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Step == step {
			return info
		}
		if time.Now().After(limit) {
			t.Fatalf("run %s never reached step %s: %+v", id, step, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeclaredRun runs a declared workflow with an HTTP step, a signal
// step, a durable sleep, a tool step and a say step to completion,
// querying it on the way, and checks idempotent starts and the errors of
// the control calls.
func TestDeclaredRun(t *testing.T) {
	addr := temporaltest.Shared(t)
	var mu sync.Mutex
	var lookups []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lookups = append(lookups, r.Method+" "+r.URL.Path+" "+r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"total":42}`)
	}))
	defer api.Close()
	charge := &chargeTool{fail: 1}
	wf, err := declared.Build(declared.Config{
		Name:  "checkout",
		Input: `{"type":"object","properties":{"order":{"type":"string"}},"required":["order"]}`,
		Steps: []declared.Step{
			{Name: "lookup", URL: "${BASE}/orders/{{input.order}}"},
			{Name: "approval", Signal: "approve", Wait: time.Minute},
			{Name: "nap", Sleep: 300 * time.Millisecond},
			{Name: "pay", Tool: "charge", Args: map[string]any{"amount": "{{steps.lookup.total}}", "by": "{{steps.approval.by}}"},
				Retries: 2, Backoff: 100 * time.Millisecond},
			{Name: "tell", Say: "Charged {{steps.pay.amount}} for order {{input.order}}."},
		},
	}, declared.Lookups{
		Tool: func(name string) (agents.Tool, bool) { return charge, name == "charge" },
		LookupEnv: func(k string) (string, bool) {
			if k == "BASE" {
				return api.URL, true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	said := make(chan string, 4)
	e := dial(t, addr, queue(t), func(run, msg string) { said <- run + ": " + msg })
	if err := e.Register(wf); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	id := "order-" + durable.NewRunID()[4:]
	in := json.RawMessage(`{"order":"A1"}`)
	if created, err := e.StartWithID(ctx, id, "checkout", in); err != nil || !created {
		t.Fatalf("StartWithID = %v, %v; want created", created, err)
	}
	if created, err := e.StartWithID(ctx, id, "checkout", json.RawMessage(`{ "order": "A1" }`)); err != nil || created {
		t.Errorf("StartWithID again = %v, %v; want the same run, not created", created, err)
	}
	if _, err := e.StartWithID(ctx, id, "checkout", json.RawMessage(`{"order":"B2"}`)); !errors.Is(err, durable.ErrConflict) {
		t.Errorf("StartWithID with another input: %v, want ErrConflict", err)
	}
	if _, err := e.Start(ctx, "checkout", json.RawMessage(`{}`)); !errors.Is(err, durable.ErrInvalidInput) {
		t.Errorf("Start without the required order: %v, want ErrInvalidInput", err)
	}
	if _, err := e.Start(ctx, "nope", nil); !errors.Is(err, durable.ErrUnknownWorkflow) {
		t.Errorf("Start of an unknown workflow: %v, want ErrUnknownWorkflow", err)
	}
	if _, err := e.StartWithID(ctx, "bad id!", "checkout", in); !errors.Is(err, durable.ErrInvalidID) {
		t.Errorf("StartWithID with a bad ID: %v, want ErrInvalidID", err)
	}

	// The query while it waits for the signal.
	info := waitStep(t, e, id, "approval")
	if info.Status != durable.StatusRunning || info.Workflow != "checkout" || string(info.Input) != `{"order":"A1"}` ||
		len(info.Steps) != 5 || !info.Steps[0].Completed || string(info.Steps[0].Output) != `{"total":42}` || info.Steps[1].Completed {
		t.Fatalf("status while waiting = %+v", info)
	}
	if _, err := e.Result(ctx, id); !errors.Is(err, durable.ErrNotFinished) {
		t.Errorf("Result while running: %v, want ErrNotFinished", err)
	}
	if err := e.Signal(ctx, id, "approve", map[string]string{"by": "ada"}); err != nil {
		t.Fatal(err)
	}
	out, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `"Charged 42 for order A1."`; got != want {
		t.Errorf("result = %s, want %s", got, want)
	}
	select {
	case msg := <-said:
		if want := id + ": Charged 42 for order A1."; msg != want {
			t.Errorf("said %q, want %q", msg, want)
		}
	default:
		t.Error("the say step said nothing")
	}
	if got := charge.got(); len(got) != 2 || got[0] != `{"amount":42,"by":"ada"}` || got[1] != got[0] {
		t.Errorf("charge calls = %q, want the same arguments twice (one failure, one retry)", got)
	}
	mu.Lock()
	if want := "GET /orders/A1 " + id + "/lookup/1"; len(lookups) != 1 || lookups[0] != want {
		t.Errorf("lookups = %q, want [%q]", lookups, want)
	}
	mu.Unlock()

	info, err = e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != durable.StatusCompleted || info.Step != "" || string(info.Result) != string(out) || info.Error != "" {
		t.Errorf("final status = %+v", info)
	}
	for i, s := range info.Steps {
		attempts := 1
		if s.Name == "pay" {
			attempts = 2
		}
		if !s.Completed || s.Attempts != attempts || s.Resumes != 0 {
			t.Errorf("step %d = %+v, want completed in %d attempts", i, s, attempts)
		}
	}
	if string(info.Steps[1].Output) != `{"by":"ada"}` || string(info.Steps[2].Output) != "null" {
		t.Errorf("signal and sleep outputs = %s, %s", info.Steps[1].Output, info.Steps[2].Output)
	}
	if err := e.Signal(ctx, id, "approve", nil); !errors.Is(err, durable.ErrRunFinished) {
		t.Errorf("Signal after the end: %v, want ErrRunFinished", err)
	}
	if _, err := e.Status(ctx, "no-such-run"); !errors.Is(err, durable.ErrNotFound) {
		t.Errorf("Status of an unknown run: %v, want ErrNotFound", err)
	}
	if created, err := e.StartWithID(ctx, id, "checkout", in); err != nil || created {
		t.Errorf("StartWithID of the finished run = %v, %v; want not created", created, err)
	}
}

// TestFailAndCancel: a step that fails for good fails the run with its
// error; a signal wait without a bound ends with Cancel; a signal wait
// with a bound and a default goes on with the default.
func TestFailAndCancel(t *testing.T) {
	addr := temporaltest.Shared(t)
	charge := &chargeTool{}
	lk := declared.Lookups{Tool: func(name string) (agents.Tool, bool) { return charge, name == "charge" }}
	wait, err := declared.Build(declared.Config{Name: "wait", Steps: []declared.Step{
		{Name: "hold", Signal: "never"},
		{Name: "pay", Tool: "charge", Args: map[string]any{"amount": 1, "by": "x"}},
	}}, lk)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := declared.Build(declared.Config{Name: "bad", Steps: []declared.Step{
		{Name: "auto", Signal: "ok", Wait: 200 * time.Millisecond, Default: map[string]any{"by": "auto"}},
		{Name: "pay", Tool: "charge", Args: map[string]any{"amount": 0, "by": "{{steps.auto.by}}"}, Retries: 3},
	}}, lk)
	if err != nil {
		t.Fatal(err)
	}
	e := dial(t, addr, queue(t), nil)
	for _, wf := range []durable.Workflow{wait, bad} {
		if err := e.Register(wf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	id, err := e.Start(ctx, "bad", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, id); !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), `bad args {"amount":0,"by":"auto"}`) {
		t.Errorf("Wait of the failing run: %v, want ErrRunFailed with the step's error", err)
	}
	info, err := e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != durable.StatusFailed || !strings.Contains(info.Error, "step pay: ") || info.Steps[1].Attempts != 1 ||
		string(info.Steps[0].Output) != `{"by":"auto"}` {
		t.Errorf("failed run = %+v, want failed at pay after one attempt (permanent error)", info)
	}

	id, err = e.Start(ctx, "wait", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitStep(t, e, id, "hold")
	if err := e.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	info, err = e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != durable.StatusCancelled || info.Steps[0].Completed || info.Steps[1].Attempts != 0 {
		t.Errorf("cancelled run = %+v", info)
	}
	if _, err := e.Result(ctx, id); !errors.Is(err, durable.ErrCancelled) {
		t.Errorf("Result of the cancelled run: %v, want ErrCancelled", err)
	}
	if err := e.Cancel(ctx, id); !errors.Is(err, durable.ErrRunFinished) {
		t.Errorf("Cancel again: %v, want ErrRunFinished", err)
	}
	if err := e.Cancel(ctx, "no-such-run"); !errors.Is(err, durable.ErrNotFound) {
		t.Errorf("Cancel of an unknown run: %v, want ErrNotFound", err)
	}
	if got := charge.got(); len(got) != 1 {
		t.Errorf("charge calls = %q, want only the failing run's one", got)
	}
}

// effects is the HTTP endpoint of the worker-kill test's steps: it records
// each call's step and idempotency key; /s3 blocks until released.
type effects struct {
	mu      sync.Mutex
	calls   []string
	s3began chan struct{} // closed at the first /s3 call
	release chan struct{} // closed: /s3 answers at once
	once    sync.Once
}

func (f *effects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	step := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	f.calls = append(f.calls, step+" "+r.Header.Get("Idempotency-Key"))
	f.mu.Unlock()
	if step == "s3" {
		f.once.Do(func() { close(f.s3began) })
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `"%s done"`, step)
}

// killWorkflow: four HTTP steps; s4 returns what the endpoint says.
func killWorkflow(base string) (durable.Workflow, error) {
	var steps []declared.Step
	for _, s := range []string{"s1", "s2", "s3", "s4"} {
		steps = append(steps, declared.Step{Name: s, URL: "${BASE}/" + s})
	}
	steps = append(steps, declared.Step{Name: "sum", Say: "{{steps.s1}}, {{steps.s2}}, {{steps.s3}}, {{steps.s4}}"})
	return declared.Build(declared.Config{Name: "kill", Steps: steps}, declared.Lookups{
		LookupEnv: func(k string) (string, bool) { return base, k == "BASE" },
	})
}

// helper is the first worker of TestWorkerKilled: it starts the run and
// works on it until it is killed.
func helper(addr string) error {
	wf, err := killWorkflow(os.Getenv(baseEnv))
	if err != nil {
		return err
	}
	ctx := context.Background()
	e, err := temporal.Dial(ctx, temporal.Options{
		Address: addr, TaskQueue: os.Getenv(queueEnv), Logger: warnLogger(),
		HeartbeatTimeout: heartbeatT, StickyTimeout: time.Second,
	})
	if err != nil {
		return err
	}
	if err := e.Register(wf); err != nil {
		return err
	}
	if _, err := e.Resume(ctx); err != nil {
		return err
	}
	if _, err := e.StartWithID(ctx, os.Getenv(runEnv), "kill", nil); err != nil {
		return err
	}
	fmt.Println("started")
	select {}
}

// TestWorkerKilled starts a run in a worker process, kill -9s it while
// step 3 works (steps 1 and 2 done), and starts a second worker here,
// which finishes the run: steps 1, 2 and 4 ran exactly once, step 3 twice
// with the same idempotency key (the interrupted attempt, re-run).
func TestWorkerKilled(t *testing.T) {
	addr := temporaltest.Shared(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &effects{s3began: make(chan struct{}), release: make(chan struct{})}
	api := httptest.NewServer(f)
	defer api.Close()
	defer func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	}()
	q := queue(t)
	id := "kill-" + durable.NewRunID()[4:]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	began := time.Now()
	first := exec.CommandContext(ctx, exe)
	first.Env = append(os.Environ(), helperEnv+"="+addr, queueEnv+"="+q, runEnv+"="+id, baseEnv+"="+api.URL,
		"GORACE=atexit_sleep_ms=0")
	first.Stderr = os.Stderr
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "started\n" {
		first.Process.Kill()
		first.Wait()
		t.Fatalf("worker process: %q, %v", line, err)
	}
	select {
	case <-f.s3began:
	case <-ctx.Done():
		first.Process.Kill()
		first.Wait()
		t.Fatal("step 3 never began")
	}
	toStep3 := time.Since(began)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = first.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("worker process ended with %v, want killed by SIGKILL", err)
	}
	close(f.release)

	killed := time.Now()
	wf, err := killWorkflow(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	e := dial(t, addr, q, nil)
	if err := e.Register(wf); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(killed)
	if got, want := string(out), `"s1 done, s2 done, s3 done, s4 done"`; got != want {
		t.Errorf("result = %s, want %s", got, want)
	}
	key := func(step string) string { return id + "/" + step + "/1" }
	want := []string{
		"s1 " + key("s1"),
		"s2 " + key("s2"),
		"s3 " + key("s3"), // interrupted by the kill
		"s3 " + key("s3"), // re-run by the second worker, same attempt and key
		"s4 " + key("s4"),
	}
	f.mu.Lock()
	got := append([]string(nil), f.calls...)
	f.mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("side effects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	info, err := e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != durable.StatusCompleted || info.Steps[2].Attempts != 1 || info.Steps[2].Resumes != 1 || info.Steps[1].Resumes != 0 {
		t.Errorf("run = %+v, want completed, s3 resumed once in its first attempt", info)
	}
	t.Logf("start → step 3 running %v; kill → run completed by the second worker %v (heartbeat timeout %v)",
		toStep3.Round(time.Millisecond), took.Round(time.Millisecond), heartbeatT)
}

// TestDefinitionChanged: a run started with one definition of a workflow
// and run by a worker whose definition has other steps fails with
// ErrDefinitionChange, running none of them.
func TestDefinitionChanged(t *testing.T) {
	addr := temporaltest.Shared(t)
	charge := &chargeTool{}
	lk := declared.Lookups{Tool: func(name string) (agents.Tool, bool) { return charge, name == "charge" }}
	build := func(step string) durable.Workflow {
		wf, err := declared.Build(declared.Config{Name: "pay", Steps: []declared.Step{
			{Name: step, Tool: "charge", Args: map[string]any{"amount": 1, "by": "x"}},
		}}, lk)
		if err != nil {
			t.Fatal(err)
		}
		return wf
	}
	q := queue(t)
	starter := dial(t, addr, q, nil) // no Resume: no worker
	if err := starter.Register(build("pay_v1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := starter.Start(ctx, "pay", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := dial(t, addr, q, nil)
	if err := w.Register(build("pay_v2")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := starter.Wait(ctx, id); !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), "steps changed") {
		t.Errorf("Wait = %v, want ErrRunFailed for a changed definition", err)
	}
	if got := charge.got(); len(got) != 0 {
		t.Errorf("charge calls = %q, want none", got)
	}
}

// TestDefinitionChangedInFlight: a run in flight whose workflow's steps
// change (its worker is replaced by one with another definition) fails
// when the new worker replays it, instead of running the new steps.
func TestDefinitionChangedInFlight(t *testing.T) {
	addr := temporaltest.Shared(t)
	charge := &chargeTool{}
	lk := declared.Lookups{Tool: func(name string) (agents.Tool, bool) { return charge, name == "charge" }}
	build := func(step string) durable.Workflow {
		wf, err := declared.Build(declared.Config{Name: "pay", Steps: []declared.Step{
			{Name: "go", Signal: "go"},
			{Name: step, Tool: "charge", Args: map[string]any{"amount": 1, "by": "x"}},
		}}, lk)
		if err != nil {
			t.Fatal(err)
		}
		return wf
	}
	q := queue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := dial(t, addr, q, nil)
	if err := old.Register(build("pay_v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := old.Start(ctx, "pay", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitStep(t, old, id, "go")
	old.Close()

	w := dial(t, addr, q, nil)
	if err := w.Register(build("pay_v2")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Signal(ctx, id, "go", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wait(ctx, id); !errors.Is(err, durable.ErrRunFailed) {
		t.Errorf("Wait = %v, want ErrRunFailed", err)
	}
	if got := charge.got(); len(got) != 0 {
		t.Errorf("charge calls = %q, want none", got)
	}
}
