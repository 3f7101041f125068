// Package provider holds what the speech providers (the recognizers under
// processors/stt and the synthesizers under processors/tts) share: the one
// typed error that drives retries and failover, the key lookup from the
// environment, the circuit breaker, and the hook that observes every call.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Error is the one error type speech providers return for failed calls.
// Retryable drives retries and failover: it is set for failures of the
// provider (timeouts, connection errors, 429s, 5xx, a stream cut short) and
// clear for failures of the request (400, 401, 404) that another try would
// repeat.
type Error struct {
	Provider  string // "openai", "deepgram", ...
	Op        string // "transcribe", "synthesize", "connect", ...
	Status    int    // HTTP status, 0 if none
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s: status %d: %v", e.Provider, e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Provider, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is, or wraps, an *Error marked retryable.
func IsRetryable(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Retryable
}

// RetryableStatus reports whether an HTTP status is worth another try:
// 408, 409, 425, 429 and every 5xx.
func RetryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// Wrap makes err an *Error of provider and op. A context error of ctx (the
// caller gave up: barge-in, session end) is returned as is, never retryable;
// any other error without a status (connection refused, reset, a body cut
// short, a timeout of the provider's own) is retryable. An err that is an
// *Error already is returned unchanged. Wrap(ctx, p, op, 0, nil) is nil.
func Wrap(ctx context.Context, provider, op string, status int, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	retry := status == 0 || RetryableStatus(status)
	return &Error{Provider: provider, Op: op, Status: status, Retryable: retry, Err: err}
}

// ErrMissingKey is wrapped by the error of APIKey for an unset variable.
var ErrMissingKey = errors.New("provider: API key variable not set")

// APIKey returns the value of the environment variable env. An empty env
// means the provider needs no key, and gives "". An unset or empty variable
// is an error wrapping ErrMissingKey that names it.
func APIKey(env string) (string, error) {
	if env == "" {
		return "", nil
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingKey, env)
	}
	return v, nil
}

// Warmer is implemented by providers that keep connections open ahead of
// need (WebSockets dialed before a turn needs them, so that it does not
// pay a TLS handshake). Warm starts opening one if none is open or being
// opened and returns without waiting for it; it may be called at any time
// from any goroutine, and does nothing after the provider is closed. The
// speech stages call it when a session starts; a provider opens the next
// one itself after each use.
type Warmer interface {
	Warm()
}
