package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxSessions is the default limit of an Admission.
const DefaultMaxSessions = 200

// Defaults of the per-address limits of an AdmissionConfig.
const (
	DefaultMaxPerAddr = 20 // concurrent sessions of one client address
	DefaultAddrRate   = 1  // new sessions a second, per address, sustained
	DefaultAddrBurst  = 10 // new sessions at once, per address
)

// AdmissionConfig configures an Admission. The zero value works: 200
// sessions, per-address limits at their defaults, no load check.
type AdmissionConfig struct {
	// MaxSessions bounds the live sessions of every edge together
	// (default DefaultMaxSessions).
	MaxSessions int
	// MaxPerAddr bounds the live sessions of one client address (default
	// DefaultMaxPerAddr; negative: no bound). IPv6 addresses count by
	// their /64.
	MaxPerAddr int
	// AddrRate and AddrBurst bound how fast one address may start
	// sessions: a bucket of AddrBurst sessions refilled at AddrRate a
	// second (defaults DefaultAddrRate, DefaultAddrBurst; a negative rate:
	// no bound).
	AddrRate  float64
	AddrBurst int
	// LimitLoopback applies the per-address limits to loopback clients
	// too. By default they are exempt: the demo, local tests and a reverse
	// proxy on the same host (which would make every client one address)
	// connect from loopback.
	LimitLoopback bool
	// Load, if set, refuses sessions while the process is overloaded
	// (ErrOverloaded).
	Load *LoadMeter
	// Grace is how long Shutdown lets sessions finish their current
	// answers and end politely (they watch Draining) before the rest are
	// closed with ErrShuttingDown (default 0: at once).
	Grace time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Admission bounds the live sessions of a server across all its edges
// (server.max_sessions is one limit for WebSocket, WebRTC, LiveKit, SIP
// and the carriers together), bounds each client address's live sessions
// and the rate at which it starts them, refuses sessions while the
// process is overloaded, and ends sessions on Shutdown. Give every edge of
// a server the same Admission. Safe for concurrent use.
type Admission struct {
	cfg AdmissionConfig

	mu       sync.Mutex
	n        int // admitted, not yet released
	live     map[*Ticket]func(error)
	addrs    map[netip.Prefix]*addrState
	sweepAt  int // sweep addrs when it grows past this
	closing  bool
	draining chan struct{} // closed when Shutdown begins
	idle     chan struct{} // closed once closing and n is 0
	idled    bool
}

// addrState is one client address: its live sessions and its bucket.
type addrState struct {
	n      int
	tokens float64
	at     time.Time // when tokens was computed
}

// NewAdmission returns an admission of at most max live sessions (default
// DefaultMaxSessions when max ≤ 0), other limits at their defaults.
func NewAdmission(max int) *Admission {
	return NewAdmissionConfig(AdmissionConfig{MaxSessions: max})
}

// NewAdmissionConfig returns an admission configured by cfg.
func NewAdmissionConfig(cfg AdmissionConfig) *Admission {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxPerAddr == 0 {
		cfg.MaxPerAddr = DefaultMaxPerAddr
	}
	if cfg.AddrRate == 0 {
		cfg.AddrRate = DefaultAddrRate
	}
	if cfg.AddrBurst <= 0 {
		cfg.AddrBurst = DefaultAddrBurst
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Admission{
		cfg: cfg, live: map[*Ticket]func(error){},
		addrs: map[netip.Prefix]*addrState{}, sweepAt: 1024,
		draining: make(chan struct{}), idle: make(chan struct{}),
	}
}

// Max returns the limit.
func (a *Admission) Max() int { return a.cfg.MaxSessions }

// Ticket is one admitted session. Release it when the session is over.
type Ticket struct {
	a    *Admission
	addr netip.Prefix // zero when not counted per address
	once sync.Once
}

// Admit admits a session not counted against any client address (a
// LiveKit participant), or refuses it (see AdmitFrom).
func (a *Admission) Admit() (*Ticket, error) { return a.AdmitFrom("") }

// AdmitFrom admits a session from the client address addr (an IP, with or
// without a port; "" when unknown), or refuses it: with ErrShuttingDown,
// ErrFull, ErrOverloaded (Refuse answers these 503), ErrAddrFull or
// ErrRateLimited (429). Admit before the expensive part of a connection
// (an upgrade, an ICE gathering) so that concurrent requests cannot all
// pass the limits.
func (a *Admission) AdmitFrom(addr string) (*Ticket, error) {
	var load error
	if a.cfg.Load != nil {
		load = a.cfg.Load.Overloaded()
	}
	key, counted := a.key(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return nil, ErrShuttingDown
	}
	if a.n >= a.cfg.MaxSessions {
		return nil, fmt.Errorf("%w (max_sessions %d)", ErrFull, a.cfg.MaxSessions)
	}
	if load != nil {
		return nil, load
	}
	t := &Ticket{a: a}
	if counted {
		st := a.addrs[key]
		now := a.cfg.Now()
		if st == nil {
			st = &addrState{tokens: float64(a.cfg.AddrBurst), at: now}
			a.addrs[key] = st
		}
		st.refill(now, a.cfg)
		if a.cfg.MaxPerAddr > 0 && st.n >= a.cfg.MaxPerAddr {
			return nil, fmt.Errorf("%w (%s has %d, max_sessions_per_addr %d)", ErrAddrFull, key.Addr(), st.n, a.cfg.MaxPerAddr)
		}
		if a.cfg.AddrRate > 0 {
			if st.tokens < 1 {
				return nil, &RateError{Addr: key.Addr().String(), RetryAfter: time.Duration((1 - st.tokens) / a.cfg.AddrRate * float64(time.Second))}
			}
			st.tokens--
		}
		st.n++
		t.addr = key
		if len(a.addrs) > a.sweepAt {
			a.sweep(now)
		}
	}
	a.n++
	return t, nil
}

// key gives the address addr counts under, and whether it counts.
func (a *Admission) key(addr string) (netip.Prefix, bool) {
	if addr == "" || (a.cfg.MaxPerAddr < 0 && a.cfg.AddrRate < 0) {
		return netip.Prefix{}, false
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() && !a.cfg.LimitLoopback {
		return netip.Prefix{}, false
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p, true
}

// refill adds the tokens earned since st.at.
func (st *addrState) refill(now time.Time, cfg AdmissionConfig) {
	if cfg.AddrRate > 0 {
		st.tokens = math.Min(float64(cfg.AddrBurst), st.tokens+now.Sub(st.at).Seconds()*cfg.AddrRate)
	}
	st.at = now
}

// sweep forgets addresses with no session and a full bucket, so that the
// table stays as large as the clients that matter. a.mu is held.
func (a *Admission) sweep(now time.Time) {
	for k, st := range a.addrs {
		st.refill(now, a.cfg)
		if st.n == 0 && (a.cfg.AddrRate <= 0 || st.tokens >= float64(a.cfg.AddrBurst)) {
			delete(a.addrs, k)
		}
	}
	a.sweepAt = max(1024, 2*len(a.addrs))
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

// Draining returns a channel that is closed when Shutdown begins: a
// session that sees it finishes its current answer, says goodbye and
// ends (within AdmissionConfig.Grace, after which it is closed).
func (a *Admission) Draining() <-chan struct{} { return a.draining }

// Release ends the ticket's admission. Idempotent.
func (t *Ticket) Release() {
	t.once.Do(func() {
		a := t.a
		a.mu.Lock()
		delete(a.live, t)
		if t.addr.IsValid() {
			if st := a.addrs[t.addr]; st != nil {
				st.n--
			}
		}
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

// Shutdown refuses new sessions and closes the draining channel
// (Draining), so that sessions finish their answers and end politely;
// after the grace period (AdmissionConfig.Grace) it closes every attached
// session left with ErrShuttingDown, and waits until every ticket is
// released or ctx ends. It may be called more than once.
func (a *Admission) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if !a.closing {
		a.closing = true
		close(a.draining)
	}
	a.checkIdle()
	a.mu.Unlock()
	if a.cfg.Grace > 0 {
		t := time.NewTimer(a.cfg.Grace)
		select {
		case <-a.idle:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	a.mu.Lock()
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

// RateError refuses a session from an address that starts sessions
// faster than its rate (server.sessions_per_addr_rate). It wraps
// ErrRateLimited.
type RateError struct {
	Addr       string
	RetryAfter time.Duration // when the next session would be admitted
}

func (e *RateError) Error() string {
	return fmt.Sprintf("%v (%s; retry in %v)", ErrRateLimited, e.Addr, e.RetryAfter.Round(time.Millisecond))
}

func (e *RateError) Unwrap() error { return ErrRateLimited }

// RefuseStatus is the HTTP status for an error of Admit: 429 Too Many
// Requests for a client over its own limits (ErrAddrFull,
// ErrRateLimited), 503 Service Unavailable for the server's (full,
// overloaded, shutting down).
func RefuseStatus(err error) int {
	if errors.Is(err, ErrAddrFull) || errors.Is(err, ErrRateLimited) {
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// RetryAfter is the wait, in whole seconds (at least 1), to suggest to a
// client refused with err (a Retry-After header).
func RetryAfter(err error) int {
	var re *RateError
	if errors.As(err, &re) {
		return max(1, int(math.Ceil(re.RetryAfter.Seconds())))
	}
	return 5
}

// Refuse answers an HTTP request that Admit refused: 503 Service
// Unavailable or 429 Too Many Requests (RefuseStatus) with a Retry-After
// header and the reason in the body ("shutting down", the limit reached).
func Refuse(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfter(err)))
	http.Error(w, err.Error(), RefuseStatus(err))
}

// ClientAddr is the address a request came from, for AdmitFrom: the host
// of its RemoteAddr (a reverse proxy in front counts as one client; see
// AdmissionConfig.LimitLoopback).
func ClientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}
