package provider

import (
	"errors"
	"sync"
	"time"
)

// ErrCircuitOpen is wrapped, in a retryable *Error, by the error of calls
// that an open circuit breaker refused (so failover moves on at once).
var ErrCircuitOpen = errors.New("provider: circuit open")

// Breaker is a circuit breaker for one provider, with the semantics of the
// models' breaker (agents.WithCircuitBreaker): after Failures retryable
// failures in a row the circuit opens and calls are refused; after Cooldown
// one call goes through as a probe (others are still refused): its success
// closes the circuit, its failure opens it for another Cooldown. It is safe
// for concurrent use.
type Breaker struct {
	failuresToOpen int
	cooldown       time.Duration

	mu       sync.Mutex
	failures int
	openedAt time.Time // zero: closed
	probing  bool
}

// NewBreaker returns a closed breaker. failures <= 0 means 5, cooldown <= 0
// means 30 s.
func NewBreaker(failures int, cooldown time.Duration) *Breaker {
	if failures <= 0 {
		failures = 5
	}
	if cooldown <= 0 {
		cooldown = 30 * time.Second
	}
	return &Breaker{failuresToOpen: failures, cooldown: cooldown}
}

// Admit reports whether a call may go, and whether it is the probe. A nil
// Breaker admits everything.
func (b *Breaker) Admit() (probe, ok bool) {
	if b == nil {
		return false, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openedAt.IsZero() {
		return false, true
	}
	if b.probing || time.Since(b.openedAt) < b.cooldown {
		return false, false
	}
	b.probing = true
	return true, true
}

// Done records the outcome of an admitted call: err nil is a success, a
// retryable err a failure, any other error (the caller's cancellation, a
// bad request) neither.
func (b *Breaker) Done(probe bool, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case err == nil:
		b.failures, b.openedAt = 0, time.Time{}
	case IsRetryable(err):
		b.failures++
		if probe || b.failures >= b.failuresToOpen {
			b.openedAt = time.Now()
		}
	}
}

// Open reports whether the circuit is open (calls are refused, except a
// probe after the cooldown).
func (b *Breaker) Open() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openedAt.IsZero()
}

// Backoff returns the wait before retry n (0 for the first): base doubled
// n times, at most 5 s. base <= 0 means 200 ms.
func Backoff(base time.Duration, n int) time.Duration {
	const limit = 5 * time.Second
	if base <= 0 {
		base = 200 * time.Millisecond
	}
	d := base
	for range n {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
