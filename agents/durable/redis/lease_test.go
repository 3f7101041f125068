package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
	"github.com/voiced-dev/voiced/agents/durable/redis"
)

// TestLeaseFencing: once a lease has expired and another owner has taken
// it, the first owner's writes, renewals and release are refused.
func TestLeaseFencing(t *testing.T) {
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: startRedis(t)})
	defer c.Close()
	s := redis.New(c, "{fence}:")
	if ok, err := s.CreateRun(ctx, "r", []byte(`{"v":0}`)); !ok || err != nil {
		t.Fatalf("CreateRun = %v, %v", ok, err)
	}
	if ok, err := s.CreateRun(ctx, "r", []byte(`{"v":9}`)); ok || err != nil {
		t.Fatalf("second CreateRun = %v, %v; want not created", ok, err)
	}
	tA, err := s.AcquireLease(ctx, "r", "A", 200*time.Millisecond)
	must(t, err)
	if _, err := s.AcquireLease(ctx, "r", "B", time.Minute); !errors.Is(err, durable.ErrLeaseHeld) {
		t.Fatalf("B's AcquireLease while A holds it = %v, want ErrLeaseHeld", err)
	}
	must(t, s.PutRunFenced(ctx, "r", tA, []byte(`{"v":1}`), false))
	must(t, s.RenewLease(ctx, "r", "A", tA, 200*time.Millisecond))

	// A stops renewing (paused); once the lease expires, B takes it.
	var tB int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		tB, err = s.AcquireLease(ctx, "r", "B", time.Minute)
		if err == nil {
			break
		}
		if !errors.Is(err, durable.ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("B's AcquireLease = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tB <= tA {
		t.Fatalf("tokens %d then %d: want increasing", tA, tB)
	}
	if err := s.PutRunFenced(ctx, "r", tA, []byte(`{"v":"stale"}`), true); !errors.Is(err, durable.ErrLeaseLost) {
		t.Errorf("A's write after losing the lease = %v, want ErrLeaseLost", err)
	}
	if err := s.RenewLease(ctx, "r", "A", tA, time.Minute); !errors.Is(err, durable.ErrLeaseLost) {
		t.Errorf("A's renewal after losing the lease = %v, want ErrLeaseLost", err)
	}
	must(t, s.ReleaseLease(ctx, "r", tA)) // a no-op: B keeps it
	if _, err := s.AcquireLease(ctx, "r", "C", time.Minute); !errors.Is(err, durable.ErrLeaseHeld) {
		t.Errorf("C's AcquireLease after A's stale release = %v, want ErrLeaseHeld", err)
	}
	must(t, s.PutRunFenced(ctx, "r", tB, []byte(`{"v":2}`), false))
	must(t, s.RenewLease(ctx, "r", "B", tB, time.Minute))
	if b, err := s.GetRun(ctx, "r"); err != nil || string(b) != `{"v":2}` {
		t.Errorf("GetRun = %s, %v; want B's write", b, err)
	}
	if ids, err := s.ActiveRuns(ctx); err != nil || len(ids) != 1 {
		t.Errorf("ActiveRuns = %v, %v; A's stale finishing write must not count", ids, err)
	}
	must(t, s.ReleaseLease(ctx, "r", tB))
	tC, err := s.AcquireLease(ctx, "r", "C", time.Minute)
	if err != nil || tC <= tB {
		t.Errorf("C's AcquireLease after B's release = %d, %v", tC, err)
	}
}

// TestStaleEngineCannotCheckpoint: an engine whose lease was taken while
// its step ran (it was paused past the lease) finds its checkpoint
// refused, and stops the run without writing; the run stays as the new
// owner sees it.
func TestStaleEngineCannotCheckpoint(t *testing.T) {
	durabletest.CheckGoroutines(t)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: startRedis(t)})
	defer c.Close()
	prefix := "{stale}:"
	s := redis.New(c, prefix)
	entered, release := make(chan struct{}), make(chan struct{})
	ran := 0
	wf := durable.Workflow{Name: "w", Steps: []durable.Step{
		{Name: "work", Run: durable.Func(func(ctx context.Context, r *durable.RunContext) (string, error) {
			ran++
			close(entered)
			<-release
			return "done by the stale owner", nil
		})},
	}}
	logs := &chanHandler{ch: make(chan string, 16)}
	e, err := durable.New(s, durable.Options{Owner: "A", LeaseTTL: time.Minute, Logger: slog.New(logs)})
	must(t, err)
	defer e.Close()
	must(t, e.Register(wf))
	id, err := e.Start(ctx, "w", nil)
	must(t, err)
	<-entered
	// A pause past the lease: the lease key expires, another engine takes it.
	must(t, c.Del(ctx, prefix+"lease:"+id).Err())
	tB, err := s.AcquireLease(ctx, id, "B", time.Minute)
	must(t, err)
	close(release)
	for msg := range logs.ch {
		if msg == "durable: run stopped: another engine owns it now" {
			break
		}
	}
	b, err := s.GetRun(ctx, id)
	must(t, err)
	var rec struct {
		Status durable.Status `json:"status"`
		Steps  []struct {
			Done bool `json:"done"`
		} `json:"steps"`
	}
	must(t, json.Unmarshal(b, &rec))
	if rec.Status != durable.StatusRunning || rec.Steps[0].Done || ran != 1 {
		t.Errorf("record after the stale owner's step = %s (ran %d)", b, ran)
	}
	// The lease is B's still.
	must(t, s.RenewLease(ctx, id, "B", tB, time.Minute))
}

// chanHandler passes the messages of warnings and errors to ch.
type chanHandler struct{ ch chan string }

func (h *chanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *chanHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default: // the test has what it waited for
	}
	return nil
}
func (h *chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *chanHandler) WithGroup(string) slog.Handler      { return h }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
