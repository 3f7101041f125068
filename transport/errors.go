package transport

import (
	"context"
	"errors"
	"fmt"
)

// Errors that end a session, shared by every edge. An edge's own errors
// wrap them (webrtc.ErrPeerGone wraps ErrClientGone) so that ErrorCode and
// callers classify every edge's sessions alike.
var (
	// ErrShuttingDown ends sessions when the server stops (code
	// shutting_down).
	ErrShuttingDown = errors.New("transport: server shutting down")
	// ErrSlowClient ends a session whose client does not receive a
	// required event or audio fast enough (code slow_client).
	ErrSlowClient = errors.New("transport: client too slow to receive")
	// ErrClientGone ends a session whose client closed or dropped the
	// connection without an "end" message. Nobody is listening, so no
	// error event is sent.
	ErrClientGone = errors.New("transport: client went away")
	// ErrIdle ends a session whose client sent nothing for too long
	// (code idle).
	ErrIdle = errors.New("transport: client idle")
	// ErrBadInput is wrapped by every violation of the protocol by a
	// client (see ProtocolError).
	ErrBadInput = errors.New("transport: bad input")
	// ErrFull refuses a session when the server has as many live sessions
	// as its limit (server.max_sessions).
	ErrFull = errors.New("transport: too many sessions")
	// ErrOverloaded refuses a session while the process is too busy to
	// serve another in real time (server.max_cpu_utilization,
	// server.max_input_lateness).
	ErrOverloaded = errors.New("transport: server overloaded")
	// ErrAddrFull refuses a session from a client address that has as
	// many live sessions as its limit (server.max_sessions_per_addr).
	ErrAddrFull = errors.New("transport: too many sessions from this address")
	// ErrRateLimited refuses a session from a client address that starts
	// sessions too fast (server.sessions_per_addr_rate); see RateError.
	ErrRateLimited = errors.New("transport: sessions started too fast from this address")
	// ErrEnded is wrapped by the errors of a session that the server
	// ended politely, after saying goodbye: it reached its maximum length
	// (code max_duration), its user stayed quiet (user_idle), or the
	// server is draining (shutting_down). See Ended.
	ErrEnded = errors.New("transport: session ended by the server")
)

// Ended returns the error of a session the server ended politely for
// the reason code ("max_duration", "user_idle", "shutting_down"): it wraps
// ErrEnded, and ErrShuttingDown for "shutting_down".
func Ended(code, msg string) error {
	err := ErrEnded
	if code == "shutting_down" {
		err = fmt.Errorf("%w: %w", ErrEnded, ErrShuttingDown)
	}
	return &CodedError{Code: code, Err: fmt.Errorf("%w: %s", err, msg)}
}

// ProtocolError is a client's violation of the protocol. Code is the
// protocol's error code (docs/protocol.md: invalid_utf8, invalid_json,
// unknown_type, too_large, ...). It wraps ErrBadInput.
type ProtocolError struct {
	Code string
	Msg  string
}

// BadInput returns a *ProtocolError with code and a formatted message.
func BadInput(code, format string, args ...any) error {
	return &ProtocolError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func (e *ProtocolError) Error() string     { return "transport: " + e.Code + ": " + e.Msg }
func (e *ProtocolError) Unwrap() error     { return ErrBadInput }
func (e *ProtocolError) ErrorCode() string { return e.Code }

// CodedError is an error an edge reports to its client under its own
// protocol code (livekit.ErrRoomClosed is "room_closed").
type CodedError struct {
	Code string
	Err  error
}

func (e *CodedError) Error() string     { return e.Err.Error() }
func (e *CodedError) Unwrap() error     { return e.Err }
func (e *CodedError) ErrorCode() string { return e.Code }

// ErrorCode gives the protocol's error code for the error that ends a
// session, or "" when the client gets no error event: a normal end (nil),
// a cancelled context, or a client that went away (ErrClientGone). An
// error with an ErrorCode() string method in its chain (ProtocolError,
// CodedError) gives its own code; the rest are internal.
func ErrorCode(err error) string {
	var c interface{ ErrorCode() string }
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, ErrClientGone):
		return ""
	case errors.As(err, &c):
		return c.ErrorCode()
	case errors.Is(err, ErrShuttingDown):
		return "shutting_down"
	case errors.Is(err, ErrSlowClient):
		return "slow_client"
	case errors.Is(err, ErrIdle):
		return "idle"
	}
	return "internal"
}

// Expected reports whether err is an ordinary end of a session, not worth
// a warning: a normal end, the client leaving, misbehaving, idling or being
// too slow, or the server shutting down.
func Expected(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrClientGone) ||
		errors.Is(err, ErrBadInput) || errors.Is(err, ErrShuttingDown) || errors.Is(err, ErrIdle) ||
		errors.Is(err, ErrSlowClient) || errors.Is(err, ErrEnded)
}
