package durabletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// The crash test re-executes the test binary as a separate process: with
// crashHelperEnv set, CrashMain runs the helper instead of the tests.
const (
	crashHelperEnv = "VOICED_DURABLE_CRASH_HELPER" // "start" or "resume"
	crashStoreEnv  = "VOICED_DURABLE_CRASH_STORE"  // the store spec given to Crash
	crashLogEnv    = "VOICED_DURABLE_CRASH_LOG"    // the side-effect log
	crashSlowEnv   = "VOICED_DURABLE_CRASH_SLOW"   // how long step 3 works
	crashRunEnv    = "VOICED_DURABLE_CRASH_RUN"    // the run to wait for (resume)
)

// OpenStore opens the store that spec names (the spec a store package's
// test gave to Crash) and returns it with a function that closes it.
type OpenStore func(spec string) (durable.Store, func(), error)

// CrashMain is the TestMain of a store package that runs Crash: in the
// child processes Crash starts it runs a workflow on open(spec) instead of
// the tests.
func CrashMain(m *testing.M, open OpenStore) {
	if mode := os.Getenv(crashHelperEnv); mode != "" {
		if err := crashHelper(mode, open); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// appendLine appends line to the file at path and fsyncs it, so that it
// survives a kill -9 right after.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// crashWorkflow: four steps that each log a line; step 3 logs "begin",
// works for slow, then logs "end".
func crashWorkflow(logPath string, slow time.Duration) durable.Workflow {
	logStep := func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		if err := appendLine(logPath, r.Step()+" "+r.IdempotencyKey()); err != nil {
			return nil, err
		}
		return json.Marshal(r.Step() + " done")
	}
	return durable.Workflow{Name: "crash", Steps: []durable.Step{
		{Name: "s1", Run: logStep},
		{Name: "s2", Run: logStep},
		{Name: "s3", Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
			if err := appendLine(logPath, "s3-begin "+r.IdempotencyKey()); err != nil {
				return nil, err
			}
			select {
			case <-time.After(slow):
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
			if err := appendLine(logPath, "s3-end "+r.IdempotencyKey()); err != nil {
				return nil, err
			}
			return json.RawMessage(`"s3 done"`), nil
		}},
		{Name: "s4", Run: durable.Func(func(ctx context.Context, r *durable.RunContext) ([]string, error) {
			if err := appendLine(logPath, r.Step()+" "+r.IdempotencyKey()); err != nil {
				return nil, err
			}
			var outs []string
			for _, s := range []string{"s1", "s2", "s3"} {
				var o string
				if err := r.DecodeOutput(s, &o); err != nil {
					return nil, err
				}
				outs = append(outs, o)
			}
			return outs, nil
		})},
	}}
}

func crashHelper(mode string, open OpenStore) error {
	slow, err := time.ParseDuration(os.Getenv(crashSlowEnv))
	if err != nil {
		return err
	}
	store, closeStore, err := open(os.Getenv(crashStoreEnv))
	if err != nil {
		return err
	}
	defer closeStore()
	// On a store with leases, the killed process's lease must expire
	// before the restarted one takes the run over: keep it short.
	e, err := durable.New(store, durable.Options{LeaseTTL: time.Second, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Register(crashWorkflow(os.Getenv(crashLogEnv), slow)); err != nil {
		return err
	}
	ctx := context.Background()
	id := os.Getenv(crashRunEnv)
	switch mode {
	case "start":
		if id, err = e.Start(ctx, "crash", nil); err != nil {
			return err
		}
		fmt.Println(id) // the test reads the run's ID from stdout
	case "resume":
		n, err := e.Resume(ctx)
		if err != nil {
			return err
		}
		if _, leased := store.(durable.Leaser); n != 1 && !leased {
			return fmt.Errorf("resumed %d runs, want 1", n)
		}
		// With leases, the run is taken over once the dead process's
		// lease expires; Wait waits for that.
	}
	out, err := e.Wait(ctx, id)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// Crash runs a workflow in a child process (the test binary, whose
// TestMain must call CrashMain with open) on the store spec names, kill
// -9s it while step 3 works (steps 1 and 2 checkpointed), restarts it, and
// checks from the side-effect log that steps 1, 2 and 4 ran exactly once
// and step 3 twice, with the same idempotency key. It is skipped with
// -short.
func Crash(t *testing.T, spec string, open OpenStore) {
	store := spec
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "effects.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	helper := func(mode, slow, run string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+mode, crashStoreEnv+"="+store,
			crashLogEnv+"="+logPath, crashSlowEnv+"="+slow, crashRunEnv+"="+run,
			"GORACE=atexit_sleep_ms=0") // the race runtime otherwise waits 1 s at exit
		cmd.Stderr = os.Stderr
		return cmd
	}

	// First life: runs until step 3 has begun, then is killed.
	first := helper("start", "10m", "")
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		first.Process.Kill()
		first.Wait()
		t.Fatalf("reading the run ID: %v", err)
	}
	id = strings.TrimSpace(id)
	for !strings.Contains(readFile(t, logPath), "s3-begin") {
		if ctx.Err() != nil {
			first.Process.Kill()
			first.Wait()
			t.Fatalf("step 3 never began; log:\n%s", readFile(t, logPath))
		}
		time.Sleep(5 * time.Millisecond)
	}
	toStep3 := time.Since(began)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = first.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first process ended with %v, want killed by SIGKILL", err)
	}

	// Second life: resumes and finishes.
	restarted := time.Now()
	second := helper("resume", "0s", id)
	var out bytes.Buffer
	second.Stdout = &out
	if err := second.Run(); err != nil {
		t.Fatalf("resumed process: %v\nlog:\n%s", err, readFile(t, logPath))
	}
	resumeTook := time.Since(restarted)
	if got, want := strings.TrimSpace(out.String()), `["s1 done","s2 done","s3 done"]`; got != want {
		t.Errorf("result = %s, want %s", got, want)
	}

	key := func(step string) string { return id + "/" + step + "/1" }
	want := strings.Join([]string{
		"s1 " + key("s1"),
		"s2 " + key("s2"),
		"s3-begin " + key("s3"), // interrupted by the kill
		"s3-begin " + key("s3"), // re-run, same attempt and key
		"s3-end " + key("s3"),
		"s4 " + key("s4"),
	}, "\n") + "\n"
	if got := readFile(t, logPath); got != want {
		t.Errorf("side-effect log:\n%s\nwant:\n%s", got, want)
	}

	s, closeStore, err := open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	e, err := durable.New(s, durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info, err := e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != durable.StatusCompleted || info.Steps[2].Attempts != 1 || info.Steps[2].Resumes != 1 || info.Steps[1].Resumes != 0 {
		t.Errorf("stored run = %+v, want completed, s3 resumed once", info)
	}
	t.Logf("start → step 3 running %v; restart → run completed (process start, resume, steps 3–4) %v",
		toStep3.Round(time.Millisecond), resumeTook.Round(time.Millisecond))
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}
