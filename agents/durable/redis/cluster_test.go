package redis_test

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
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/declared"
	"github.com/voiced-dev/voiced/agents/durable/redis"
)

// The environment of a server process of TestTwoServersOneKilled.
const (
	serverEnv  = "VOICED_TEST_SERVER"  // its name: A or B
	redisEnv   = "VOICED_TEST_REDIS"   // the Redis address
	effectsEnv = "VOICED_TEST_EFFECTS" // the side-effect endpoint's URL
	runsEnv    = "VOICED_TEST_RUNS"    // run IDs it starts, comma-separated
)

// clusterWorkflow has three steps with side effects (HTTP calls to the
// test's endpoint, which records them by idempotency key) around a
// durable timer.
func clusterWorkflow() declared.Config {
	effect := func(step string) declared.Step {
		return declared.Step{
			Name:    step,
			URL:     "${" + effectsEnv + "}/effect/{{run.id}}/" + step,
			Method:  "POST",
			Headers: map[string]string{"X-Server": "${" + serverEnv + "}"},
			Retries: 5, Backoff: 100 * time.Millisecond,
		}
	}
	return declared.Config{Name: "pay", Steps: []declared.Step{
		effect("charge"),
		effect("ship"),
		{Name: "cool", Sleep: 200 * time.Millisecond},
		effect("notify"),
	}}
}

// serverMain runs one server: an engine with 1 s leases on the shared
// Redis, that starts its runs and takes over others', until stdin closes.
func serverMain() error {
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(redisEnv)})
	defer c.Close()
	name := os.Getenv(serverEnv)
	e, err := durable.New(redis.New(c, "{cluster}:"), durable.Options{
		Owner: name, LeaseTTL: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("server", name),
	})
	if err != nil {
		return err
	}
	defer e.Close()
	wf, err := declared.Build(clusterWorkflow(), declared.Lookups{})
	if err != nil {
		return err
	}
	if err := e.Register(wf); err != nil {
		return err
	}
	ctx := context.Background()
	for id := range strings.SplitSeq(os.Getenv(runsEnv), ",") {
		if _, err := e.StartWithID(ctx, id, "pay", map[string]string{}); err != nil {
			return err
		}
	}
	if _, err := e.Resume(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test closes it (or kills us)
	return nil
}

// effects is the side-effect endpoint: it applies each idempotency key
// once, and counts every call. Server A's calls for step "ship" are held
// unanswered, so that A is killed in the middle of that step.
type effects struct {
	mu      sync.Mutex
	calls   map[string]int    // idempotency key → calls
	applied map[string]string // run/step → the key applied (first call)
	by      map[string]string // run/step → the server whose call was applied
	dup     int               // effects applied twice for one run/step
	inShip  chan string       // A's runs, when A's "ship" call arrives
}

func (f *effects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/effect/"), "/")
	key, server := r.Header.Get("Idempotency-Key"), r.Header.Get("X-Server")
	if len(parts) != 2 || r.Method != "POST" || key != parts[0]+"/"+parts[1]+"/1" || (server != "A" && server != "B") {
		http.Error(w, fmt.Sprintf("unexpected %s %s key %q server %q", r.Method, r.URL.Path, key, server), http.StatusBadRequest)
		return
	}
	if server == "A" && parts[1] == "ship" {
		f.inShip <- parts[0]
		<-r.Context().Done() // A dies holding this call
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[key]++
	rs := parts[0] + "/" + parts[1]
	if _, ok := f.applied[rs]; ok && f.calls[key] == 1 {
		f.dup++ // a second key for one step: not exactly once
	}
	if _, ok := f.applied[rs]; !ok {
		f.applied[rs], f.by[rs] = key, server
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"server":%q}`, server)
}

// TestTwoServersOneKilled runs two server processes on one Redis, each
// starting three runs; kill -9s server A while its runs are inside their
// second step, and checks that B takes them over once A's leases expire,
// that every run completes, and that every step's side effect happened
// exactly once (the step A was killed in is re-run by B with the same
// idempotency key, which the endpoint drops).
func TestTwoServersOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addr := startRedis(t)
	f := &effects{calls: map[string]int{}, applied: map[string]string{}, by: map[string]string{}, inShip: make(chan string, 3)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func(name string, runs []string) (*exec.Cmd, io.WriteCloser) {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), serverEnv+"="+name, redisEnv+"="+addr, effectsEnv+"="+srv.URL,
			runsEnv+"="+strings.Join(runs, ","), "GORACE=atexit_sleep_ms=0")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("server %s: %q, %v", name, line, err)
		}
		return cmd, stdin
	}
	aRuns, bRuns := []string{"a1", "a2", "a3"}, []string{"b1", "b2", "b3"}
	a, _ := start("A", aRuns)
	b, bIn := start("B", bRuns)
	defer func() {
		bIn.Close()
		if err := b.Wait(); err != nil {
			t.Errorf("server B: %v", err)
		}
	}()
	for range aRuns {
		select {
		case <-f.inShip:
		case <-ctx.Done():
			a.Process.Kill()
			t.Fatal("A's runs never reached their ship step")
		}
	}
	if err := a.Process.Kill(); err != nil { // SIGKILL: no lease is released
		t.Fatal(err)
	}
	a.Wait()

	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	store := redis.New(c, "{cluster}:")
	all := append(aRuns, bRuns...)
	type record struct {
		Status durable.Status `json:"status"`
		Steps  []struct {
			Name    string `json:"name"`
			Done    bool   `json:"done"`
			Attempt int    `json:"attempt"`
			Resumes int    `json:"resumes"`
		} `json:"steps"`
	}
	recs := map[string]record{}
	for _, id := range all {
		for {
			b, err := store.GetRun(ctx, id)
			if err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
			var r record
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if r.Status.Finished() {
				recs[id] = r
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("run %s not finished: %s", id, b)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range all {
		r := recs[id]
		if r.Status != durable.StatusCompleted {
			t.Errorf("run %s: %s", id, r.Status)
		}
		for _, s := range r.Steps {
			resumes := 0
			if id[0] == 'a' && s.Name == "ship" {
				resumes = 1 // interrupted by the kill, re-run by B
			}
			if !s.Done || s.Attempt != 1 || s.Resumes != resumes {
				t.Errorf("run %s step %s: %+v, want done in attempt 1 with %d resumes", id, s.Name, s, resumes)
			}
		}
		for _, step := range []string{"charge", "ship", "notify"} {
			key := id + "/" + step + "/1"
			if f.applied[id+"/"+step] != key || f.calls[key] != 1 {
				t.Errorf("%s/%s: applied %q, %d calls answered; want %s once", id, step, f.applied[id+"/"+step], f.calls[key], key)
			}
			want := "B"
			if id[0] == 'a' && step == "charge" {
				want = "A"
			}
			if f.by[id+"/"+step] != want {
				t.Errorf("%s/%s applied by %s, want %s", id, step, f.by[id+"/"+step], want)
			}
		}
	}
	if f.dup != 0 {
		t.Errorf("%d side effects applied twice", f.dup)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("timed out")
	}
}
