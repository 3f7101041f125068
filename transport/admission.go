package transport

import (
	"context"
	"fmt"
	"net/http"
	"sync"
)

// DefaultMaxSessions is the default limit of an Admission.
const DefaultMaxSessions = 200

// Admission bounds the live sessions of a server across all its edges
// (server.max_sessions is one limit for WebSocket, WebRTC and LiveKit
// together) and ends them on Shutdown. Give every edge of a server the same
// Admission. Safe for concurrent use.
type Admission struct {
	max int

	mu      sync.Mutex
	n       int // admitted, not yet released
	live    map[*Ticket]func(error)
	closing bool
	idle    chan struct{} // closed once closing and n is 0
	idled   bool
}

// NewAdmission returns an admission of at most max live sessions (default
// DefaultMaxSessions when max ≤ 0).
func NewAdmission(max int) *Admission {
	if max <= 0 {
		max = DefaultMaxSessions
	}
	return &Admission{max: max, live: map[*Ticket]func(error){}, idle: make(chan struct{})}
}

// Max returns the limit.
func (a *Admission) Max() int { return a.max }

// Ticket is one admitted session. Release it when the session is over.
type Ticket struct {
	a    *Admission
	once sync.Once
}

// Admit admits a session, or refuses it with ErrShuttingDown or ErrFull.
// Admit before the expensive part of a connection (an upgrade, an ICE
// gathering) so that concurrent requests cannot all pass the limit.
func (a *Admission) Admit() (*Ticket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return nil, ErrShuttingDown
	}
	if a.n >= a.max {
		return nil, fmt.Errorf("%w (max_sessions %d)", ErrFull, a.max)
	}
	a.n++
	return &Ticket{a: a}, nil
}

// Attach registers close as the way to end the ticket's session on
// Shutdown. If Shutdown has already begun, close(ErrShuttingDown) is
// called at once. close must be safe to call from any goroutine and more
// than once (Conn.Close is).
func (t *Ticket) Attach(close func(error)) {
	a := t.a
	a.mu.Lock()
	closing := a.closing
	if !closing {
		a.live[t] = close
	}
	a.mu.Unlock()
	if closing {
		close(ErrShuttingDown)
	}
}

// Release ends the ticket's admission. Idempotent.
func (t *Ticket) Release() {
	t.once.Do(func() {
		a := t.a
		a.mu.Lock()
		delete(a.live, t)
		a.n--
		a.checkIdle()
		a.mu.Unlock()
	})
}

// Sessions returns the number of sessions admitted and not yet released.
func (a *Admission) Sessions() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// Shutdown refuses new sessions, closes every attached one with
// ErrShuttingDown, and waits until every ticket is released or ctx ends.
// It may be called more than once.
func (a *Admission) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closing = true
	a.checkIdle()
	closers := make([]func(error), 0, len(a.live))
	for _, c := range a.live {
		closers = append(closers, c)
	}
	a.mu.Unlock()
	for _, c := range closers {
		c(ErrShuttingDown)
	}
	select {
	case <-a.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkIdle closes idle once shutting down with no session left. a.mu is
// held.
func (a *Admission) checkIdle() {
	if a.closing && a.n == 0 && !a.idled {
		a.idled = true
		close(a.idle)
	}
}

// Refuse answers an HTTP request that Admit refused: 503 Service
// Unavailable with the reason ("shutting down", or the limit reached).
func Refuse(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
}
