package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// DefaultQueue is the default length of a Conn's outbound queue.
const DefaultQueue = 512

// Outgoing is one message for an edge's writer: a JSON event (Binary
// false), or audio the edge encoded (Binary true, for an edge that sends
// audio on the same connection, like the WebSocket).
type Outgoing struct {
	Binary bool
	Data   []byte
	// Closing marks the error event Close queues last: edges whose peer
	// does not speak voiced's protocol (carriers, SIP) drop it.
	Closing bool
}

// ConnConfig configures a Conn. The zero value works.
type ConnConfig struct {
	// Kind names the edge ("websocket", "webrtc", "livekit"); it becomes
	// Session.Kind and a logger attribute.
	Kind string
	// Queue is the length of the outbound queue (default DefaultQueue).
	Queue int
	// Logger gets the session's id and kind as attributes.
	Logger *slog.Logger
	// ErrorMessage encodes the message Close queues for the error that
	// ends the session, given its code (ErrorCode): for an edge that
	// speaks another protocol than docs/protocol.md (RTVI's error). Nil:
	// the protocol's error Event.
	ErrorMessage func(code string, err error) []byte
}

// Conn is the skeleton of one session, shared by every edge: its id, the
// outbound queue the edge's writer drains, the slow-client policy, and
// close-once with an error event.
//
// Slow-client policy: an optional message (an interim transcript) that
// does not fit in the queue is dropped; a required one (every other event,
// and audio) ends the session with ErrSlowClient. The media path never
// blocks on a slow client.
//
// Close ends the session once: the error event for its error (ErrorCode)
// is queued as the last message, Done is closed, and nothing is queued
// after it. The edge's writer then flushes what is queued, and closes the
// connection its own way.
//
// An edge whose client has no channel for events (a phone line) still
// drains Outgoing, discarding what it cannot send, so that the policy
// never ends its sessions; it may replace the Session's Observer with its
// own (a carrier's "clear" on an interruption).
//
// All methods are safe for concurrent use.
type Conn struct {
	id     string
	kind   string
	log    *slog.Logger
	start  time.Time
	errMsg func(code string, err error) []byte

	out chan Outgoing
	// mu makes Close and enqueue exclusive, so that nothing is queued
	// after the error event that Close queues.
	mu     sync.Mutex
	once   sync.Once
	closed chan struct{}
	err    error // set before closed is closed
}

// NewConn returns the skeleton of a new session with a random id.
func NewConn(cfg ConnConfig) *Conn {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return &Conn{
		id: id, kind: cfg.Kind, start: time.Now(), errMsg: cfg.ErrorMessage,
		log:    cfg.Logger.With("session", id, "transport", cfg.Kind),
		out:    make(chan Outgoing, cfg.Queue),
		closed: make(chan struct{}),
	}
}

// ID returns the session's id.
func (c *Conn) ID() string { return c.id }

// Kind returns the edge's name.
func (c *Conn) Kind() string { return c.kind }

// Logger returns the session's logger.
func (c *Conn) Logger() *slog.Logger { return c.log }

// Outgoing returns the queue the edge's writer drains. After Done is
// closed nothing more is queued: the writer drains what is left without
// blocking, then closes the connection.
func (c *Conn) Outgoing() <-chan Outgoing { return c.out }

// Done is closed by Close.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err returns the error the session was closed with; nil before Close, or
// after a normal end.
func (c *Conn) Err() error {
	select {
	case <-c.closed:
		return c.err
	default:
		return nil
	}
}

// Session returns the Session of this connection for the Factory, with
// the Conn as its Observer, Notify and Close.
func (c *Conn) Session(in, out frame.Format, input, output pipeline.Processor, feed func(context.Context, Pusher) error) *Session {
	return &Session{
		ID: c.id, Kind: c.kind, In: in, Out: out,
		Input: input, Output: output,
		Observer: c, Feed: feed, Notify: c.Notify, Close: c.Close,
	}
}

// Enqueue queues m for the writer and reports whether it was queued.
// When the queue is full, an optional message is dropped and a required
// one closes the session with ErrSlowClient. After Close it drops m.
func (c *Conn) Enqueue(m Outgoing, required bool) bool {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return false
	default:
	}
	select {
	case c.out <- m:
		c.mu.Unlock()
		return true
	default:
		c.mu.Unlock()
		if required {
			c.Close(ErrSlowClient)
		}
		return false
	}
}

// Send stamps ev with the session's clock (t_ms) and queues it; an
// optional event (Event.Optional) may be dropped, any other is required.
func (c *Conn) Send(ev Event) {
	ev.TMs = time.Since(c.start).Milliseconds()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	c.Enqueue(Outgoing{Data: b}, !ev.Optional())
}

// Ready sends the "ready" event that opens the protocol: the session's id,
// the client's rates and the current turn (when p reports one with a
// Turn() uint32 method, as *pipeline.Pipeline does).
func (c *Conn) Ready(p Pusher, in, out frame.Format) {
	ev := Event{Type: "ready", SessionID: c.id, SampleRate: in.SampleRate, OutputSampleRate: out.SampleRate}
	if t, ok := p.(interface{ Turn() uint32 }); ok {
		ev.Turn = t.Turn()
	}
	c.Send(ev)
}

// Notify sends the events that f produces (EventFor), an `interrupted`
// event first for an interrupted answer. It does not block.
func (c *Conn) Notify(f frame.Frame) {
	ev, ok := EventFor(f)
	if !ok {
		return
	}
	if iv, ok := InterruptedEvent(f); ok {
		c.Send(iv)
	}
	c.Send(ev)
}

// OnHop implements pipeline.Observer: every new frame is notified.
func (c *Conn) OnHop(h pipeline.Hop) {
	if h.First {
		c.Notify(h.Frame)
	}
}

// Close ends the session: a nil err is a normal end; otherwise, unless
// ErrorCode(err) is "", an error event with that code and err's message is
// queued (dropped if the queue is full). Idempotent; safe from any
// goroutine.
func (c *Conn) Close(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.err = err
		if code := ErrorCode(err); code != "" {
			var b []byte
			if c.errMsg != nil {
				b = c.errMsg(code, err)
			} else {
				b, _ = json.Marshal(Event{Type: "error", Code: code, Message: err.Error(), TMs: time.Since(c.start).Milliseconds()})
			}
			select {
			case c.out <- Outgoing{Data: b, Closing: true}:
			default:
			}
		}
		close(c.closed)
	})
}

// LogEnd logs the end of the session: at Info for an expected end
// (Expected), at Warn otherwise.
func (c *Conn) LogEnd(err error) {
	if Expected(err) {
		c.log.Info("session ended", "err", err)
	} else {
		c.log.Warn("session failed", "err", err)
	}
}
