package transport

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestAdmissionPerAddr: one address may hold MaxPerAddr sessions; others
// are not affected; a released session frees its place; loopback is
// exempt unless LimitLoopback; IPv6 counts by /64.
func TestAdmissionPerAddr(t *testing.T) {
	a := NewAdmissionConfig(AdmissionConfig{MaxSessions: 100, MaxPerAddr: 2, AddrRate: -1})
	var held []*Ticket
	for _, addr := range []string{"192.0.2.1:1000", "192.0.2.1:1001"} {
		tk, err := a.AdmitFrom(addr)
		if err != nil {
			t.Fatalf("AdmitFrom(%s): %v", addr, err)
		}
		held = append(held, tk)
	}
	_, err := a.AdmitFrom("192.0.2.1:1002")
	if !errors.Is(err, ErrAddrFull) {
		t.Fatalf("third session of one address: %v, want ErrAddrFull", err)
	}
	w := httptest.NewRecorder()
	Refuse(w, err)
	if w.Code != 429 || !strings.Contains(w.Body.String(), "max_sessions_per_addr 2") || w.Header().Get("Retry-After") == "" {
		t.Errorf("Refuse: %d %q Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if _, err := a.AdmitFrom("192.0.2.2"); err != nil {
		t.Errorf("another address: %v", err)
	}
	for range 5 {
		if _, err := a.AdmitFrom("127.0.0.1:5"); err != nil {
			t.Fatalf("loopback: %v", err)
		}
	}
	held[0].Release()
	if _, err := a.AdmitFrom("192.0.2.1"); err != nil {
		t.Errorf("after a release: %v", err)
	}
	for _, addr := range []string{"2001:db8:1:2::1", "[2001:db8:1:2::99]:443"} {
		if _, err := a.AdmitFrom(addr); err != nil {
			t.Fatalf("AdmitFrom(%s): %v", addr, err)
		}
	}
	if _, err := a.AdmitFrom("2001:db8:1:2:ffff::1"); !errors.Is(err, ErrAddrFull) {
		t.Errorf("third session of one /64: %v", err)
	}
	if _, err := a.AdmitFrom("2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}

	lo := NewAdmissionConfig(AdmissionConfig{MaxPerAddr: 1, AddrRate: -1, LimitLoopback: true})
	lo.AdmitFrom("127.0.0.1")
	if _, err := lo.AdmitFrom("127.0.0.1"); !errors.Is(err, ErrAddrFull) {
		t.Errorf("LimitLoopback: %v", err)
	}
}

// TestAdmissionRate: an address gets AddrBurst sessions at once, then
// AddrRate a second; the refusal says when to retry.
func TestAdmissionRate(t *testing.T) {
	now := time.Unix(1000, 0)
	a := NewAdmissionConfig(AdmissionConfig{MaxPerAddr: -1, AddrRate: 2, AddrBurst: 3, Now: func() time.Time { return now }})
	for i := range 3 {
		tk, err := a.AdmitFrom("198.51.100.7")
		if err != nil {
			t.Fatalf("session %d of the burst: %v", i, err)
		}
		tk.Release() // the rate counts starts, not live sessions
	}
	_, err := a.AdmitFrom("198.51.100.7")
	var re *RateError
	if !errors.As(err, &re) || !errors.Is(err, ErrRateLimited) || re.RetryAfter != 500*time.Millisecond {
		t.Fatalf("over the burst: %v", err)
	}
	if RefuseStatus(err) != 429 || RetryAfter(err) != 1 {
		t.Errorf("status %d, Retry-After %d", RefuseStatus(err), RetryAfter(err))
	}
	if _, err := a.AdmitFrom("198.51.100.8"); err != nil {
		t.Errorf("another address: %v", err)
	}
	now = now.Add(500 * time.Millisecond)
	if _, err := a.AdmitFrom("198.51.100.7"); err != nil {
		t.Errorf("after the refill: %v", err)
	}
	if _, err := a.AdmitFrom("198.51.100.7"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("the refill is one session: %v", err)
	}
}

// TestAdmissionSweep: addresses that are done are forgotten, so a flood of
// one-off addresses does not grow the table without bound.
func TestAdmissionSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	a := NewAdmissionConfig(AdmissionConfig{Now: func() time.Time { return now }})
	for i := range 3000 {
		tk, err := a.AdmitFrom("10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
		if err != nil {
			t.Fatal(err)
		}
		tk.Release()
		now = now.Add(10 * time.Second) // every bucket is full again
	}
	a.mu.Lock()
	n := len(a.addrs)
	a.mu.Unlock()
	if n > 1100 {
		t.Errorf("%d addresses remembered", n)
	}
}

// TestAdmissionLoad: an overloaded meter refuses with 503 and the reason.
func TestAdmissionLoad(t *testing.T) {
	now := time.Unix(1000, 0)
	var cpu time.Duration
	m := NewLoadMeter(LoadConfig{MaxCPU: 0.8, MaxLateness: 50 * time.Millisecond, MinFrames: 10, Procs: 2,
		CPUTime: func() time.Duration { return cpu }, Now: func() time.Time { return now }})
	a := NewAdmissionConfig(AdmissionConfig{Load: m})
	if _, err := a.Admit(); err != nil {
		t.Fatalf("idle: %v", err)
	}
	// 1.8 s of CPU in a second on 2 cores: 90%.
	now, cpu = now.Add(time.Second), 1800*time.Millisecond
	_, err := a.Admit()
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "CPU at 90% of 2 cores") {
		t.Fatalf("busy CPU: %v", err)
	}
	if RefuseStatus(err) != 503 {
		t.Errorf("status %d", RefuseStatus(err))
	}
	// Measured at most once a second: the next second is idle, but not
	// yet sampled.
	now = now.Add(500 * time.Millisecond)
	if _, err := a.Admit(); !errors.Is(err, ErrOverloaded) {
		t.Errorf("half a second later: %v", err)
	}
	now = now.Add(500 * time.Millisecond)
	if _, err := a.Admit(); err != nil {
		t.Errorf("idle again: %v", err)
	}
	// Lateness: 2 of 100 frames over 50 ms is over 1%.
	for i := range 100 {
		d := 5 * time.Millisecond
		if i < 2 {
			d = 80 * time.Millisecond
		}
		m.ObserveLateness(d)
	}
	_, err = a.Admit()
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "2.0% of input audio waited over 50ms") {
		t.Fatalf("late input: %v", err)
	}
	// The window (5 s) moves on.
	now = now.Add(5 * time.Second)
	if _, err := a.Admit(); err != nil {
		t.Errorf("after the window: %v", err)
	}
	// Too few frames decide nothing.
	for range 5 {
		m.ObserveLateness(time.Second)
	}
	if _, err := a.Admit(); err != nil {
		t.Errorf("5 late frames: %v", err)
	}
}

// TestAdmissionGrace: Shutdown refuses new sessions and signals Draining
// at once; sessions that end within the grace are not closed; the others
// are closed with ErrShuttingDown when it is over.
func TestAdmissionGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdmissionConfig(AdmissionConfig{Grace: 10 * time.Second})
		polite, _ := a.Admit()
		slow, _ := a.Admit()
		closed := map[string]error{}
		polite.Attach(func(err error) { closed["polite"] = err })
		slow.Attach(func(err error) { closed["slow"] = err })
		go func() {
			<-a.Draining()
			time.Sleep(3 * time.Second) // finishes its answer, says goodbye
			polite.Release()
		}()
		done := make(chan error)
		start := time.Now()
		go func() { done <- a.Shutdown(context.Background()) }()
		synctest.Wait()
		if _, err := a.Admit(); !errors.Is(err, ErrShuttingDown) {
			t.Errorf("Admit while draining: %v", err)
		}
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if closed["polite"] != nil || !errors.Is(closed["slow"], ErrShuttingDown) {
			t.Errorf("closed %v", closed)
		}
		slow.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 10*time.Second {
			t.Errorf("Shutdown took %v", d)
		}
	})
}

// FuzzAdmitFrom: any client address string (a RemoteAddr, a SIP source)
// is admitted or refused with one of Admit's errors, and every release
// gives its place back.
func FuzzAdmitFrom(f *testing.F) {
	for _, s := range []string{"192.0.2.1:5060", "[2001:db8::1%eth0]:443", "::ffff:10.0.0.1", "127.0.0.1", "", "not an address", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		a := NewAdmissionConfig(AdmissionConfig{MaxPerAddr: 1, AddrBurst: 2, LimitLoopback: true})
		var held []*Ticket
		for range 3 {
			tk, err := a.AdmitFrom(addr)
			if err != nil {
				if !errors.Is(err, ErrAddrFull) && !errors.Is(err, ErrRateLimited) {
					t.Fatalf("AdmitFrom(%q): %v", addr, err)
				}
				continue
			}
			held = append(held, tk)
		}
		for _, tk := range held {
			tk.Release()
		}
		if n := a.Sessions(); n != 0 {
			t.Fatalf("%d sessions after every release", n)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for k, st := range a.addrs {
			if st.n != 0 {
				t.Fatalf("%v holds %d after every release", k, st.n)
			}
		}
	})
}
