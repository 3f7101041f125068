package agents

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"
)

// Middleware wraps a ChatModel to add behaviour (retries, timeouts,
// failover, circuit breaking). The model it returns must be safe for
// concurrent use, as ChatModel requires.
type Middleware func(ChatModel) ChatModel

// Chain wraps m in mws; the first middleware is the outermost:
// Chain(m, WithRetry(p), WithTimeout(d)) retries calls that each time out
// after d.
func Chain(m ChatModel, mws ...Middleware) ChatModel {
	for i := len(mws) - 1; i >= 0; i-- {
		m = mws[i](m)
	}
	return m
}

// ModelFunc adapts a function to ChatModel.
type ModelFunc func(ctx context.Context, req Request) iter.Seq2[Event, error]

// Stream implements ChatModel.
func (f ModelFunc) Stream(ctx context.Context, req Request) iter.Seq2[Event, error] {
	return f(ctx, req)
}

// wrapped is a middleware's model; it names itself after the model it wraps.
type wrapped struct {
	inner  ChatModel
	stream func(ctx context.Context, req Request) iter.Seq2[Event, error]
}

func (w *wrapped) Stream(ctx context.Context, req Request) iter.Seq2[Event, error] {
	return w.stream(ctx, req)
}

// Provider implements ModelInfo: the wrapped model's provider, or "" if it
// cannot name itself.
func (w *wrapped) Provider() string {
	if mi, ok := w.inner.(ModelInfo); ok {
		return mi.Provider()
	}
	return ""
}

// Model implements ModelInfo like Provider.
func (w *wrapped) Model() string {
	if mi, ok := w.inner.(ModelInfo); ok {
		return mi.Model()
	}
	return ""
}

func providerName(m ChatModel) string {
	if mi, ok := m.(ModelInfo); ok && mi.Provider() != "" {
		return mi.Provider()
	}
	return "model"
}

// attempt streams one call to m, passing its events on. It reports whether
// any event was passed on, the call's error, and whether the consumer
// stopped.
func attempt(ctx context.Context, m ChatModel, req Request, yield func(Event, error) bool) (yielded bool, err error, stopped bool) {
	for ev, err := range m.Stream(ctx, req) {
		if err != nil {
			return yielded, err, false
		}
		yielded = true
		if !yield(ev, nil) {
			return true, nil, true
		}
	}
	return yielded, nil, false
}

// RetryPolicy configures WithRetry. The zero value retries twice, after
// 200 ms then 400 ms, without jitter.
type RetryPolicy struct {
	// Max is the number of retries after the first attempt (default 2;
	// negative: none).
	Max int
	// Base is the wait before the first retry (default 200 ms); each
	// further wait doubles, up to Cap (default 5 s).
	Base, Cap time.Duration
	// Jitter, in [0, 1], shortens each wait by a random fraction of up to
	// Jitter (0: exact waits).
	Jitter float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Max == 0 {
		p.Max = 2
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Cap <= 0 {
		p.Cap = 5 * time.Second
	}
	p.Jitter = min(max(p.Jitter, 0), 1)
	return p
}

// Backoff returns the wait before retry n (0 for the first retry).
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := p.Base
	for range n {
		if d >= p.Cap/2 {
			d = p.Cap
			break
		}
		d *= 2
	}
	d = min(d, p.Cap)
	if p.Jitter > 0 {
		d -= time.Duration(p.Jitter * rand.Float64() * float64(d))
	}
	return d
}

// WithRetry retries calls that fail with a retryable ProviderError before
// yielding any event (once an answer has started it cannot be taken back).
// It waits p.Backoff(n) between attempts, and stops waiting with ctx's
// cause when ctx is done. The last attempt's error is returned.
func WithRetry(p RetryPolicy) Middleware {
	p = p.withDefaults()
	return func(m ChatModel) ChatModel {
		return &wrapped{inner: m, stream: func(ctx context.Context, req Request) iter.Seq2[Event, error] {
			return func(yield func(Event, error) bool) {
				for n := 0; ; n++ {
					yielded, err, stopped := attempt(ctx, m, req, yield)
					if stopped || err == nil {
						return
					}
					if yielded || !IsRetryable(err) || n >= p.Max || ctx.Err() != nil {
						yield(Event{}, err)
						return
					}
					if serr := sleep(ctx, p.Backoff(n)); serr != nil {
						yield(Event{}, serr)
						return
					}
				}
			}
		}}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ErrModelTimeout is wrapped, in a retryable ProviderError, by the error of
// a call that WithTimeout cut short.
var ErrModelTimeout = errors.New("agents: model call timed out")

// WithTimeout bounds each call, from the request to the last event, to d.
// A call cut short ends with a retryable ProviderError wrapping
// ErrModelTimeout (so retries and failover apply when nothing was yielded
// yet). The wrapped model must end its stream when its context is done.
func WithTimeout(d time.Duration) Middleware {
	return func(m ChatModel) ChatModel {
		return &wrapped{inner: m, stream: func(ctx context.Context, req Request) iter.Seq2[Event, error] {
			return func(yield func(Event, error) bool) {
				tctx, cancel := context.WithTimeoutCause(ctx, d, ErrModelTimeout)
				defer cancel()
				_, err, stopped := attempt(tctx, m, req, yield)
				if stopped {
					return
				}
				if err == nil && tctx.Err() != nil && ctx.Err() == nil {
					err = context.Cause(tctx) // the model ended quietly on the deadline
				}
				if err != nil {
					if ctx.Err() == nil && errors.Is(context.Cause(tctx), ErrModelTimeout) {
						err = &ProviderError{Provider: providerName(m), Op: "stream", Retryable: true,
							Err: fmt.Errorf("%w after %v", ErrModelTimeout, d)}
					}
					yield(Event{}, err)
				}
			}
		}}
	}
}

// WithFailover sends a call that fails with a retryable error before
// yielding any event to the next model of backups, in order. When every
// model failed, the error joins all their errors (IsRetryable still sees
// them).
func WithFailover(backups ...ChatModel) Middleware {
	return func(m ChatModel) ChatModel {
		models := append([]ChatModel{m}, backups...)
		return &wrapped{inner: m, stream: func(ctx context.Context, req Request) iter.Seq2[Event, error] {
			return func(yield func(Event, error) bool) {
				var errs []error
				for _, mm := range models {
					yielded, err, stopped := attempt(ctx, mm, req, yield)
					if stopped || err == nil {
						return
					}
					if yielded || !IsRetryable(err) || ctx.Err() != nil {
						yield(Event{}, err)
						return
					}
					errs = append(errs, err)
				}
				yield(Event{}, fmt.Errorf("agents: all %d models failed: %w", len(models), errors.Join(errs...)))
			}
		}}
	}
}

// ErrCircuitOpen is wrapped, in a retryable ProviderError, by the error of
// calls refused by an open circuit breaker (so failover moves on at once).
var ErrCircuitOpen = errors.New("agents: circuit open")

// BreakerConfig configures WithCircuitBreaker. The zero value opens after 5
// failures in a row and probes again after 30 s.
type BreakerConfig struct {
	Failures int           // consecutive failures that open the circuit (default 5)
	Cooldown time.Duration // how long it stays open before a probe (default 30 s)
}

// WithCircuitBreaker gives each model it wraps its own breaker. A failure is
// a call ending with a retryable error (a provider in trouble: timeouts,
// 429s, 5xx; not the caller's cancellation nor a bad request). After
// Failures failures in a row the circuit opens: calls fail at once with
// ErrCircuitOpen. After Cooldown one call goes through as a probe (others
// still fail fast): its success closes the circuit, its failure opens it
// for another Cooldown. A call that yields an event counts as a success.
func WithCircuitBreaker(c BreakerConfig) Middleware {
	if c.Failures <= 0 {
		c.Failures = 5
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 30 * time.Second
	}
	return func(m ChatModel) ChatModel {
		b := &breaker{cfg: c}
		return &wrapped{inner: m, stream: func(ctx context.Context, req Request) iter.Seq2[Event, error] {
			return func(yield func(Event, error) bool) {
				probe, ok := b.admit()
				if !ok {
					yield(Event{}, &ProviderError{Provider: providerName(m), Op: "stream", Retryable: true, Err: ErrCircuitOpen})
					return
				}
				yielded, err, stopped := attempt(ctx, m, req, yield)
				switch {
				case stopped || yielded || err == nil:
					b.done(probe, outcomeSuccess)
				case IsRetryable(err) && ctx.Err() == nil:
					b.done(probe, outcomeFailure)
				default:
					b.done(probe, outcomeNeutral)
				}
				if err != nil && !stopped {
					yield(Event{}, err)
				}
			}
		}}
	}
}

type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	outcomeNeutral
)

type breaker struct {
	cfg BreakerConfig

	mu       sync.Mutex
	failures int
	openedAt time.Time // zero: closed
	probing  bool
}

// admit reports whether a call may go, and whether it is the probe.
func (b *breaker) admit() (probe, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openedAt.IsZero() {
		return false, true
	}
	if b.probing || time.Since(b.openedAt) < b.cfg.Cooldown {
		return false, false
	}
	b.probing = true
	return true, true
}

func (b *breaker) done(probe bool, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch o {
	case outcomeSuccess:
		b.failures, b.openedAt = 0, time.Time{}
	case outcomeFailure:
		b.failures++
		if probe || b.failures >= b.cfg.Failures {
			b.openedAt = time.Now()
		}
	}
}
