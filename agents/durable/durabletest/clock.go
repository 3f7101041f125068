// Package durabletest is the conformance suite every durable.Store passes,
// and the helpers to test durable workflows with: a fake clock, a
// goroutine-leak check, and a crash test that kill -9s a process mid-step.
package durabletest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// FakeClock is a durable.Clock whose time moves only on Advance.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers change
}

type fakeTimer struct {
	c  *FakeClock
	at time.Time
	ch chan time.Time
}

func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTimer(d time.Duration) durable.Timer {
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

func (c *FakeClock) notifyLocked() {
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
func (c *FakeClock) Advance(d time.Duration) {
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

// WaitTimer blocks until a timer is pending that fires at at. It gives up
// (failing the test) after a generous real-time bound, which only a bug
// reaches.
func (c *FakeClock) WaitTimer(t testing.TB, at time.Time) {
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
