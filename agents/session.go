package agents

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
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
	// Start is what the client gave the session when it started it
	// (JSON; nil for none): the body of an RTVI /start (docs/rtvi.md).
	Start json.RawMessage
	// State is the session's mutable record: its metadata and the tools
	// that ran. Nil if the host keeps none.
	State *SessionState
	// Go, if set, runs fn on a goroutine the session owns: ctx is the
	// session's context (cancelled when it ends) and the session waits for
	// fn before it is over. It does nothing once the session has ended.
	// Call it only from a goroutine the session runs (an agent's run, or
	// an fn given to Go), so that the session cannot be over meanwhile.
	Go func(fn func(ctx context.Context))
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

// SessionState is what one session records for the conditions and actions
// of its agents: metadata (what the transport knew of the session, such as
// the dialed number or the fields of a start request, and what agents set
// since), the names of the tools that have run without error, and values
// that session-scoped helpers keep. It is safe for concurrent use.
type SessionState struct {
	mu      sync.Mutex
	meta    map[string]string
	ran     map[string]bool
	values  map[any]any
	closers []func()
	closed  bool
}

// NewSessionState returns a state holding a copy of metadata.
func NewSessionState(metadata map[string]string) *SessionState {
	return &SessionState{meta: maps.Clone(metadata), ran: map[string]bool{}, values: map[any]any{}}
}

// Get returns a metadata value.
func (s *SessionState) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.meta[key]
	return v, ok
}

// Set sets a metadata value.
func (s *SessionState) Set(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meta == nil {
		s.meta = map[string]string{}
	}
	s.meta[key] = value
}

// Metadata returns a copy of the metadata.
func (s *SessionState) Metadata() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.meta)
}

// ToolRan reports whether a call of the tool named name has returned
// without error in this session.
func (s *SessionState) ToolRan(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ran[name]
}

// NoteTool records that a call of the tool named name returned without
// error. LLMAgent calls it for every successful tool call of a run whose
// context carries the session.
func (s *SessionState) NoteTool(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ran[name] = true
}

// Value returns the value kept under key, making it with make on first
// use (once per session, under the state's lock: make must not call the
// state). Keys are compared like context keys; use an unexported type.
// After Close it returns nil without calling make.
func (s *SessionState) Value(key any, make func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if v, ok := s.values[key]; ok {
		return v
	}
	v := make()
	s.values[key] = v
	return v
}

// OnClose registers fn to run when the session ends (Close); fns run in
// the reverse order of registration. After Close, fn runs at once.
func (s *SessionState) OnClose(fn func()) {
	s.mu.Lock()
	if !s.closed {
		s.closers = append(s.closers, fn)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	fn()
}

// Close runs the functions registered with OnClose. The host calls it
// when the session ends. It is idempotent.
func (s *SessionState) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	fns := s.closers
	s.closers = nil
	s.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
