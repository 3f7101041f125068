package provider

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Observer watches provider calls: telemetry implements it with a span and
// metrics (time to first result, errors by kind). Implementations are safe
// for concurrent use.
type Observer interface {
	// StartCall is called when a call begins. The returned context (which
	// may carry a span) is the call's; the Call is told its milestones.
	StartCall(ctx context.Context, info CallInfo) (context.Context, Call)
}

// CallInfo names a call.
type CallInfo struct {
	Provider string // "openai"
	Op       string // "transcribe", "synthesize", ...
	Model    string // the model or voice model at the provider, if any
}

// Call is one observed call. FirstResult may be called any number of times,
// from any goroutine (only the first counts); End exactly once, last.
type Call interface {
	// FirstResult marks the first audio or text received.
	FirstResult()
	// End ends the call with its error (nil on success).
	End(err error)
}

// Start begins observing a call with o; a nil o gives a call that does
// nothing. It is what providers call.
func Start(ctx context.Context, o Observer, info CallInfo) (context.Context, Call) {
	if o == nil {
		return ctx, nopCall{}
	}
	return o.StartCall(ctx, info)
}

type nopCall struct{}

func (nopCall) FirstResult() {}
func (nopCall) End(error)    {}

// Stats is an Observer that keeps counts and the latest time to first
// result per provider and operation, for logs and tests. The zero value is
// ready; it is safe for concurrent use.
type Stats struct {
	mu    sync.Mutex
	calls map[CallInfo]*CallStats
}

// CallStats are the counts of one provider operation.
type CallStats struct {
	Calls, Errors, Retryable int
	FirstResult              time.Duration // of the latest call that had one
}

// StartCall implements Observer.
func (s *Stats) StartCall(ctx context.Context, info CallInfo) (context.Context, Call) {
	return ctx, &statsCall{s: s, info: info, start: time.Now()}
}

// Get returns the counts for info.
func (s *Stats) Get(info CallInfo) CallStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.calls[info]; c != nil {
		return *c
	}
	return CallStats{}
}

func (s *Stats) update(info CallInfo, f func(*CallStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[CallInfo]*CallStats{}
	}
	c := s.calls[info]
	if c == nil {
		c = &CallStats{}
		s.calls[info] = c
	}
	f(c)
}

type statsCall struct {
	s     *Stats
	info  CallInfo
	start time.Time
	first atomic.Bool
}

func (c *statsCall) FirstResult() {
	if c.first.Swap(true) {
		return
	}
	d := time.Since(c.start)
	c.s.update(c.info, func(cs *CallStats) { cs.FirstResult = d })
}

func (c *statsCall) End(err error) {
	c.s.update(c.info, func(cs *CallStats) {
		cs.Calls++
		if err != nil {
			cs.Errors++
			if IsRetryable(err) {
				cs.Retryable++
			}
		}
	})
}
