package agents

import (
	"context"
	"encoding/json"
)

// SessionInfo is what agents and tools know of the session they serve.
type SessionInfo struct {
	ID string
	// Say speaks text to the session as the active agent (goroutine-safe).
	// It does nothing once the session has ended.
	Say func(text string)
	// Done is closed when the session ends, so that what keeps Say for
	// later (a workflow that will announce its result) can let it go.
	// Nil if the host cannot tell.
	Done <-chan struct{}
	// Metadata is what the client gave the session when it started it
	// (JSON; nil for none): the body of an RTVI /start (docs/rtvi.md).
	Metadata json.RawMessage
}

type sessionKey struct{}

// WithSession returns ctx carrying info.
func WithSession(ctx context.Context, info SessionInfo) context.Context {
	return context.WithValue(ctx, sessionKey{}, info)
}

// SessionFromContext returns the session a tool or agent runs for.
func SessionFromContext(ctx context.Context) (SessionInfo, bool) {
	info, ok := ctx.Value(sessionKey{}).(SessionInfo)
	return info, ok
}
