package durable

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is a Clock whose time moves only on Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers change
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return t
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.notifyLocked()
	return true
}

// Advance moves time on by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	clear(c.timers[len(kept):])
	c.timers = kept
	c.notifyLocked()
}

// waitTimer blocks until a timer is pending that fires at at. It gives up
// (failing the test) after a generous real-time bound, which only a bug
// reaches.
func (c *fakeClock) waitTimer(t testing.TB, at time.Time) {
	t.Helper()
	limit := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		found := slices.ContainsFunc(c.timers, func(tm *fakeTimer) bool { return tm.at.Equal(at) })
		ch := c.changed
		var pending []string
		for _, tm := range c.timers {
			pending = append(pending, tm.at.Sub(c.now).String())
		}
		c.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-limit:
			t.Fatalf("no timer for %v (now+%v) appeared; pending in: %v", at, at.Sub(c.Now()), pending)
		}
	}
}

// backend opens handles on one store's data: each call of the returned
// function closes the previous handle and opens a new one, as a restarted
// process would.
type backend struct {
	name string
	new  func(t *testing.T) func() Store
}

func boltBackend() backend {
	return backend{name: "bolt", new: func(t *testing.T) func() Store {
		dir := t.TempDir()
		var cur *BoltStore
		t.Cleanup(func() {
			if cur != nil {
				cur.Close()
			}
		})
		return func() Store {
			if cur != nil {
				cur.Close()
			}
			s, err := OpenBolt(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur = s
			return s
		}
	}}
}

func redisBackend() backend {
	return backend{name: "redis", new: func(t *testing.T) func() Store {
		addr := startRedis(t)
		prefix := "{test:" + t.Name() + "}:"
		var cur *redis.Client
		t.Cleanup(func() {
			if cur != nil {
				cur.Close()
			}
		})
		return func() Store {
			if cur != nil {
				cur.Close()
			}
			cur = redis.NewClient(&redis.Options{Addr: addr})
			return NewRedis(cur, prefix)
		}
	}}
}

// startRedis starts a redis-server on a free loopback port, in a temporary
// directory, for the test's lifetime. Without redis-server on PATH the
// test is skipped, or fails when VOICED_REQUIRE_SERVICES=1.
func startRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server not installed (apt-get install redis-server) and VOICED_REQUIRE_SERVICES=1")
		}
		t.Skip("redis-server not installed (apt-get install redis-server); set VOICED_REQUIRE_SERVICES=1 to fail instead")
	}
	dir := t.TempDir()
	for try := 0; ; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitRedis(addr, exited) {
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			return addr
		}
		cmd.Process.Kill()
		<-exited
		if try == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not start:\n%s", log)
		}
	}
}

// waitRedis polls the server until it answers PING, it exits, or 15 s pass.
func waitRedis(addr string, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	limit := time.Now().Add(15 * time.Second)
	for time.Now().Before(limit) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// checkGoroutines fails the test if, after fn's cleanup, more goroutines
// run than before (waiting a bounded while for exiting ones).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		limit := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(limit) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}
