// Package carrier is the edge for the media streams of telephone carriers:
// a carrier answers a phone call, opens a WebSocket to voiced and streams
// the caller's audio over it as JSON (or binary) messages; voiced streams
// the agent's voice back on the same socket. One shared edge does the
// work — admission, the session on the transport core, paced playout,
// DTMF, marks, "clear" on barge-in and hanging up — and each vendor is a
// small Codec in its own file:
//
//   - twilio.go: Twilio Media Streams (<Connect><Stream>), μ-law 8 kHz
//     https://www.twilio.com/docs/voice/media-streams/websocket-messages
//   - telnyx.go: Telnyx media streaming (stream_bidirectional_mode rtp),
//     PCMU or PCMA 8 kHz
//     https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming
//   - plivo.go: Plivo audio streams (<Stream bidirectional="true">),
//     playAudio, checkpoint and clearAudio
//     https://www.plivo.com/docs/voice/xml/the-stream-element
//   - vonage.go: Vonage Voice API WebSocket (NCCO connect), binary
//     16-bit linear PCM frames and JSON text events
//     https://developer.vonage.com/en/voice/voice-api/concepts/websockets
//   - exotel.go: Exotel Voicebot applet, Twilio-like JSON with base64
//     16-bit linear PCM
//     https://developer.exotel.com/docs/agentstream/websocket-protocol
//
// A carrier connection has no channel for voiced's protocol events: the
// edge replaces the session's Observer with its own, which turns the end
// of an interrupted answer (BotStoppedSpeaking with Interrupted set, the
// `interrupted` event of other edges) into the carrier's clear message and
// the end of every answer into a mark. The turn-taking stage decides about
// barge-in; the edge only tells the carrier to drop what it buffers.
//
// Closing the WebSocket does not end a phone call. When a session ends for
// any reason but the caller hanging up, the edge waits (boundedly) for the
// carrier to answer its last mark — the answer has then been heard — and
// asks the carrier's REST call-control API to hang up (Vendor.Hangup),
// with the credentials named in API.
package carrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// Errors of the carrier edge.
var (
	// ErrCallEnded ends a session whose carrier reported that the call or
	// the stream stopped (the caller hung up). It wraps
	// transport.ErrClientGone: nobody is listening any more.
	ErrCallEnded = fmt.Errorf("carrier: call ended: %w", transport.ErrClientGone)
	// ErrHangup wraps a failed REST hang-up.
	ErrHangup = errors.New("carrier: hang-up failed")
	// ErrNoCredentials is returned by a hang-up whose credentials are not
	// in the environment.
	ErrNoCredentials = errors.New("carrier: no call-control credentials")
)

// MaxMessage bounds the size of a carrier's message.
const MaxMessage = 1 << 20

// Kind is the kind of an event a Codec decodes.
type Kind uint8

const (
	None  Kind = iota // a message the edge ignores (connected, an ack, …)
	Start             // the stream starts: Event.Call is set
	Audio             // caller audio: Event.Audio
	DTMF              // a key the caller pressed: Event.Digit
	Mark              // the carrier played everything sent before a mark: Event.Mark
	Stop              // the call or the stream ended
)

// Event is one decoded carrier message.
type Event struct {
	Kind  Kind
	Call  Call    // Start
	Audio []int16 // Audio: PCM at Call.In's rate, owned by the receiver
	Digit byte    // DTMF: '0'–'9', '*', '#', 'A'–'D'
	Mark  string  // Mark: the name sent with the mark
}

// Call describes one carrier stream, from its start message.
type Call struct {
	StreamID  string // the carrier's id of the stream (Twilio streamSid)
	CallID    string // the id call control uses (Twilio CallSid, Telnyx call_control_id, Vonage uuid)
	AccountID string // the account, when the carrier says (Twilio AccountSid)
	// In is the caller audio's format, Out the format of the audio the
	// carrier takes back.
	In, Out frame.Format
}

// Codec is one stream's side of a vendor's wire protocol. Decode is called
// from the edge's reader, the encoders from the writer side (the playout
// and the observer); after Start they only read the state Decode set
// before it, so a Codec need not lock. Encoders return the message to
// queue; ok false means the vendor has no such message.
type Codec interface {
	// Decode decodes one WebSocket message (binary or text). An error is a
	// *transport.ProtocolError. It does not retain data.
	Decode(binary bool, data []byte) (Event, error)
	// EncodeAudio encodes one chunk of the agent's voice in Call.Out's
	// format. It must not retain pcm.
	EncodeAudio(pcm []int16) transport.Outgoing
	// EncodeMark asks the carrier to report when everything sent before
	// it has been played.
	EncodeMark(name string) (m transport.Outgoing, ok bool)
	// EncodeClear asks the carrier to drop the audio it has not played.
	EncodeClear() transport.Outgoing
}

// Vendor is one carrier's protocol and call control.
type Vendor struct {
	// Name is the vendor's name ("twilio"); sessions' Kind is
	// "carrier/"+Name.
	Name string
	// New returns the codec of a new stream.
	New func() Codec
	// Chunk is the duration of each audio message sent (default 20 ms).
	Chunk time.Duration
	// Hangup ends call c through the vendor's REST API; nil when closing
	// the stream ends the call (Exotel's flow continues with its next
	// applet).
	Hangup func(ctx context.Context, hc *http.Client, api API, c Call) error
	// Transfer hands the caller to target (+E.164 or a sip: URI) through
	// the vendor's API; nil when it has none, NoTransfer saying why.
	Transfer   func(ctx context.Context, hc *http.Client, api API, c Call, target string) error
	NoTransfer string
	// SendDTMF has the vendor play keys to the far end; nil when it
	// cannot, NoDTMF saying why.
	SendDTMF func(ctx context.Context, hc *http.Client, api API, c Call, keys string) error
	NoDTMF   string
}

// Vendors are the carriers voiced serves, each at /carrier/{Name}.
var Vendors = []Vendor{Twilio, Telnyx, Plivo, Vonage, Exotel}

// API is how to reach a vendor's REST call-control API. Credentials are
// read from the environment at the time of the hang-up, from the variables
// named here, so that no secret sits in a configuration file.
type API struct {
	// BaseURL replaces the vendor's API address (tests point it at a
	// fake).
	BaseURL string `toml:"base_url"`
	// UserEnv names the variable with the account's id (Twilio account
	// SID, Plivo auth id, Vonage application id).
	UserEnv string `toml:"user_env"`
	// SecretEnv names the variable with the secret (Twilio auth token,
	// Telnyx API key, Plivo auth token, Vonage private key in PEM).
	SecretEnv string `toml:"secret_env"`
}

// APIs is the [carriers] section of the configuration: one API per vendor
// with call control.
type APIs struct {
	Twilio API `toml:"twilio"`
	Telnyx API `toml:"telnyx"`
	Plivo  API `toml:"plivo"`
	Vonage API `toml:"vonage"`
}

// For returns the API of the named vendor (the zero API for one without).
func (a APIs) For(vendor string) API {
	switch vendor {
	case "twilio":
		return a.Twilio
	case "telnyx":
		return a.Telnyx
	case "plivo":
		return a.Plivo
	case "vonage":
		return a.Vonage
	}
	return API{}
}

// Config configures a Handler. The zero value works.
type Config struct {
	// Admission admits sessions; share the server's among its edges.
	// Nil: the handler has its own, of transport.DefaultMaxSessions.
	Admission *transport.Admission
	// API reaches the vendor's call control for hanging up.
	API API
	// HTTPClient makes the REST calls (default: one with a 10 s timeout).
	HTTPClient *http.Client
	// StartTimeout bounds the wait for the stream's start (default 10 s).
	StartTimeout time.Duration
	// DTMFPause ends a keypad entry that is not ended by '#' (default 2 s).
	DTMFPause time.Duration
	// MarkWait bounds the wait for the carrier to play out the last answer
	// before hanging up (default 5 s).
	MarkWait time.Duration
	// Settle is how long the bot must stay quiet before the agent's
	// end_call or transfer_call goes ahead (default 1.2 s).
	Settle time.Duration
	// PipelineFormat is the pipeline's audio format (default 16 kHz mono).
	PipelineFormat frame.Format
	Logger         *slog.Logger
}

// Handler serves one vendor's media streams: each WebSocket is one call.
type Handler struct {
	v   Vendor
	cfg Config
	run transport.Factory
	up  gws.Upgrader

	mu   sync.Mutex
	live map[string]*conn // calls past their start, by session ID (Control)
}

// NewHandler returns the handler of v's streams, running run for each.
func NewHandler(v Vendor, cfg Config, run transport.Factory) *Handler {
	if v.Chunk <= 0 {
		v.Chunk = 20 * time.Millisecond
	}
	if cfg.Admission == nil {
		cfg.Admission = transport.NewAdmission(0)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.DTMFPause <= 0 {
		cfg.DTMFPause = 2 * time.Second
	}
	if cfg.MarkWait <= 0 {
		cfg.MarkWait = 5 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = defaultSettle
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{v: v, cfg: cfg, run: run, live: map[string]*conn{}, up: gws.Upgrader{
		ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10,
		// Carriers are servers, not browsers, and the endpoint holds no
		// ambient credentials a page could abuse: whatever Origin a
		// carrier sends is accepted.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
}

// Kind returns the Session.Kind of the handler's sessions.
func (h *Handler) Kind() string { return "carrier/" + h.v.Name }

// ServeHTTP implements http.Handler: it upgrades the request and runs the
// call until it ends. A call_id query parameter names the call when the
// carrier's start message does not (Vonage).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Admission.AdmitFrom(transport.ClientAddr(r))
	if err != nil {
		transport.Refuse(w, err)
		return
	}
	defer t.Release()
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	transport.BoundSendBuffer(ws.NetConn())
	ws.SetReadLimit(MaxMessage)
	c := &conn{
		Conn:   transport.NewConn(transport.ConnConfig{Kind: h.Kind(), Logger: h.cfg.Logger}),
		h:      h,
		ws:     ws,
		codec:  h.v.New(),
		msgs:   make(chan inMsg, 64),
		rdone:  make(chan struct{}),
		stop:   make(chan struct{}),
		wdone:  make(chan struct{}),
		acked:  make(chan struct{}, 1),
		marks:  map[string]bool{},
		callID: r.URL.Query().Get("call_id"),
	}
	t.Attach(c.Close)
	c.serve(r.Context())
}

// conn is one carrier call.
type conn struct {
	*transport.Conn
	h      *Handler
	ws     *gws.Conn
	codec  Codec
	call   Call
	callID string // from the URL
	play   *transport.Playout

	written      atomic.Int64 // audio messages written (Control's quiet wait)
	endOnce      sync.Once    // EndCall
	transferring atomic.Bool  // a Transfer is under way

	msgs     chan inMsg    // reader → feed
	rdone    chan struct{} // closed when the reader exits
	stop     chan struct{} // closed when feed is done: the reader drops what it reads
	stopOnce sync.Once
	wdone    chan struct{} // closed when the writer exits

	mu      sync.Mutex
	marks   map[string]bool // marks sent and not yet answered, by name
	seq     int             // names marks
	acked   chan struct{}   // signalled when a mark is answered
	stopped bool            // the carrier reported the call's end
	// transferred: the vendor took the call elsewhere; it is not hung up.
	transferred bool
}

type inMsg struct {
	ev  Event
	err error
}

func (c *conn) serve(ctx context.Context) {
	go c.reader()
	defer func() {
		c.stopFeed()
		c.ws.Close()
		<-c.rdone
	}()
	call, err := c.handshake()
	if err != nil {
		c.Close(err)
		go c.writer()
		<-c.wdone
		c.closeWS(err)
		c.LogEnd(err)
		return
	}
	c.call = call
	in, err := transport.NewInput(call.In, c.h.cfg.PipelineFormat)
	if err != nil {
		c.Close(err)
		c.LogEnd(err)
		return
	}
	lead := max(100*time.Millisecond, 2*c.h.v.Chunk)
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: call.Out, Chunk: c.h.v.Chunk, Lead: lead})
	c.play = play
	s := c.Session(call.In, call.Out, in, play, c.feed)
	s.Observer = pipeline.ObserverFunc(c.onHop)
	s.Notify = func(frame.Frame) {} // a phone line has no events channel
	go c.writer()
	c.Logger().Info("call started", "stream", call.StreamID, "call", call.CallID, "in_rate", call.In.SampleRate, "out_rate", call.Out.SampleRate)
	c.h.register(c)
	err = c.h.run(ctx, s)
	c.h.unregister(c)
	c.Close(err)
	c.stopFeed()
	<-c.wdone
	if c.hangsUp(err) {
		c.waitMarks()
		if herr := c.hangup(); herr != nil {
			c.Logger().Warn("hang-up failed", "err", herr)
		}
	}
	c.closeWS(err)
	c.LogEnd(err)
}

// hangsUp reports whether the call must be hung up when the session ends
// with err: unless the caller hung up or the carrier went away.
func (c *conn) hangsUp(err error) bool {
	c.mu.Lock()
	stopped := c.stopped || c.transferred
	c.mu.Unlock()
	return !stopped && !errors.Is(err, transport.ErrClientGone)
}

// Hangup ends the phone call through the vendor's call control (nothing
// for a vendor whose call ends with the stream).
func (c *conn) hangup() error {
	if c.h.v.Hangup == nil || c.call.CallID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.h.v.Hangup(ctx, c.h.cfg.HTTPClient, c.h.cfg.API, c.call)
	if err == nil {
		c.Logger().Info("hung up", "call", c.call.CallID)
	}
	return err
}

// waitMarks waits until the carrier has answered every mark sent (it has
// played the last answer), MarkWait at most.
func (c *conn) waitMarks() {
	t := time.NewTimer(c.h.cfg.MarkWait)
	defer t.Stop()
	for {
		c.mu.Lock()
		n := len(c.marks)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-c.acked:
		case <-c.rdone:
			return
		case <-t.C:
			c.Logger().Warn("carrier did not answer marks", "pending", n)
			return
		}
	}
}

// handshake reads until the stream's start.
func (c *conn) handshake() (Call, error) {
	t := time.NewTimer(c.h.cfg.StartTimeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return Call{}, ErrCallEnded
			}
			if m.err != nil {
				return Call{}, m.err
			}
			switch m.ev.Kind {
			case Start:
				call := m.ev.Call
				if call.CallID == "" {
					call.CallID = c.callID
				}
				return call, nil
			case Stop:
				return Call{}, ErrCallEnded
			case None:
			default:
				return Call{}, transport.BadInput("bad_start", "%s message before the stream's start", kindName(m.ev.Kind))
			}
		case <-t.C:
			return Call{}, transport.BadInput("bad_start", "no start within %v", c.h.cfg.StartTimeout)
		case <-c.Done():
			return Call{}, c.Err()
		}
	}
}

func kindName(k Kind) string {
	return [...]string{"ignored", "start", "audio", "dtmf", "mark", "stop"}[k]
}

// reader is the connection's only reader: it decodes every message,
// answers marks itself, and hands the rest to feed until stop.
func (c *conn) reader() {
	defer close(c.rdone)
	defer close(c.msgs)
	for {
		typ, data, err := c.ws.ReadMessage()
		var m inMsg
		if err != nil {
			if errors.Is(err, gws.ErrReadLimit) {
				m.err = transport.BadInput("too_large", "message over %d bytes", MaxMessage)
			} else {
				m.err = fmt.Errorf("carrier: %w: %w", transport.ErrClientGone, err)
			}
		} else {
			m.ev, m.err = c.codec.Decode(typ == gws.BinaryMessage, data)
		}
		switch {
		case m.err == nil && m.ev.Kind == Mark:
			c.answered(m.ev.Mark)
			continue
		case m.err == nil && m.ev.Kind == Stop:
			c.mu.Lock()
			c.stopped = true
			c.mu.Unlock()
		}
		select {
		case c.msgs <- m:
		case <-c.stop:
			// Feed is done; keep reading for the answers to marks.
		}
		if err != nil {
			return
		}
	}
}

// stopFeed tells the reader that nobody takes its messages any more.
func (c *conn) stopFeed() { c.stopOnce.Do(func() { close(c.stop) }) }

// answered records the carrier's answer to a mark.
func (c *conn) answered(name string) {
	c.mu.Lock()
	delete(c.marks, name) // an answer to a cleared mark is not owed
	c.mu.Unlock()
	c.Logger().Debug("mark played", "mark", name)
	select {
	case c.acked <- struct{}{}:
	default:
	}
}

// maxKeys ends a keypad entry that never sees '#'.
const maxKeys = 32

// feed implements transport.Session.Feed. Every key the caller presses is
// pushed as a frame.DTMF; the keys of an entry (up to '#', a pause, or
// maxKeys) also become one typed transcript "DTMF: 123#" that the agent
// answers, as on the SIP edge.
func (c *conn) feed(ctx context.Context, p transport.Pusher) error {
	var keys []byte
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		text := "DTMF: " + string(keys)
		keys = keys[:0]
		// Typed text: the turn-taking stage decides about barge-in.
		return p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true})
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Done():
			// Closed from outside (Shutdown, a failed write).
			if err := c.Err(); err != nil {
				return err
			}
			return transport.ErrShuttingDown
		case <-pause.C:
			if err := flush(); err != nil {
				return err
			}
		case m, ok := <-c.msgs:
			if !ok {
				return ErrCallEnded
			}
			if m.err != nil {
				return m.err
			}
			switch m.ev.Kind {
			case Audio:
				if len(m.ev.Audio) == 0 {
					continue
				}
				if err := p.Push(ctx, &frame.InputAudio{Format: c.call.In, Samples: m.ev.Audio}); err != nil {
					return err
				}
			case DTMF:
				d := m.ev.Digit
				c.Logger().Debug("dtmf", "digit", string(d))
				if err := p.Push(ctx, &frame.DTMF{Digit: d}); err != nil {
					return err
				}
				keys = append(keys, d)
				if d == '#' || len(keys) >= maxKeys {
					pause.Stop()
					if err := flush(); err != nil {
						return err
					}
					continue
				}
				pause.Reset(c.h.cfg.DTMFPause)
			case Stop:
				return ErrCallEnded
			case Start:
				return transport.BadInput("bad_start", "a second start")
			}
		}
	}
}

// WriteAudio implements transport.AudioWriter. A carrier buffers what it
// is sent, so audio is a required message.
func (c *conn) WriteAudio(pcm []int16) error {
	c.written.Add(1)
	c.Enqueue(c.codec.EncodeAudio(pcm), true)
	return nil
}

// onHop is the session's observer: the end of an answer sends a mark, the
// end of an interrupted one a clear.
func (c *conn) onHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	b, ok := h.Frame.(*frame.BotStoppedSpeaking)
	if !ok {
		return
	}
	if b.Interrupted {
		c.Enqueue(c.codec.EncodeClear(), true)
		// The carrier answers (or drops) the marks it held; nothing it
		// played before them is owed any more.
		c.mu.Lock()
		clear(c.marks)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("voiced-%d-%d", b.Turn, c.seq)
	c.mu.Unlock()
	if m, ok := c.codec.EncodeMark(name); ok {
		// Owed before it is queued, so that a fast answer finds it.
		c.mu.Lock()
		c.marks[name] = true
		c.mu.Unlock()
		if !c.Enqueue(m, true) {
			c.mu.Lock()
			delete(c.marks, name)
			c.mu.Unlock()
		}
	}
}

// writer is the connection's only writer; it exits once the session is
// closed and what was queued is flushed. The socket stays open (the reader
// still hears mark answers) until serve closes it.
func (c *conn) writer() {
	defer close(c.wdone)
	write := func(m transport.Outgoing) error {
		if m.Closing {
			return nil // voiced's closing error event: a carrier does not speak it
		}
		typ := gws.TextMessage
		if m.Binary {
			typ = gws.BinaryMessage
		}
		c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return c.ws.WriteMessage(typ, m.Data)
	}
	for {
		select {
		case m := <-c.Outgoing():
			if err := write(m); err != nil {
				c.Close(fmt.Errorf("carrier: %w: write: %w", transport.ErrClientGone, err))
				return
			}
		case <-c.Done():
			for {
				select {
				case m := <-c.Outgoing():
					if write(m) != nil {
						return
					}
					continue
				default:
				}
				return
			}
		}
	}
}

// closeWS sends the close frame for the session's end.
func (c *conn) closeWS(err error) {
	code, reason := gws.CloseNormalClosure, "end"
	switch {
	case errors.Is(err, transport.ErrClientGone):
		return
	case errors.Is(err, ErrEndedByAgent), errors.Is(err, ErrTransferred):
	case errors.Is(err, transport.ErrBadInput):
		code, reason = gws.ClosePolicyViolation, transport.ErrorCode(err)
	case errors.Is(err, transport.ErrShuttingDown):
		code, reason = gws.CloseGoingAway, "shutting_down"
	case err != nil && !errors.Is(err, context.Canceled):
		code, reason = gws.CloseInternalServerErr, transport.ErrorCode(err)
	}
	c.ws.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}
