// Package websocket is the WebSocket transport: one connection to /ws is one
// conversation, speaking the protocol in docs/protocol.md (PCM16LE audio in
// binary messages, JSON events in text messages).
package websocket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// closeWait is how long a closed session waits for the client to answer
// the close before the connection is dropped.
const closeWait = time.Second

// Limits of the protocol.
const (
	MaxMessage  = 1 << 20 // bytes of any message
	MaxText     = 4096    // bytes of typed text
	DefaultRate = 16000
)

// Config configures a Handler. The zero value works.
type Config struct {
	// Origins lists the allowed values of the Origin header (scheme://host:port)
	// besides the server's own host. "*" allows any.
	Origins []string
	// MaxSessions bounds concurrent sessions (default 200); more get HTTP 503.
	MaxSessions int
	// StartTimeout bounds the wait for the first message (default 30 s).
	StartTimeout time.Duration
	// PipelineFormat is the format of the pipeline's audio (default 16 kHz mono).
	PipelineFormat frame.Format
	Logger         *slog.Logger
}

// Handler serves the WebSocket protocol. Each accepted connection runs the
// Factory on its own goroutine. Shutdown ends live sessions.
type Handler struct {
	cfg     Config
	run     transport.Factory
	up      gws.Upgrader
	log     *slog.Logger
	mu      sync.Mutex
	conns   map[*conn]struct{}
	active  int // requests admitted and not yet finished (≥ len(conns))
	closing bool
	wg      sync.WaitGroup
}

var (
	errShutdown   = transport.ErrShuttingDown
	errSlowClient = errors.New("websocket: client too slow to receive")
	// errClientGone ends a session whose client closed or dropped the
	// connection without an "end" message.
	errClientGone = errors.New("websocket: client went away")
	// ErrBadInput wraps every protocol violation by the client.
	ErrBadInput = errors.New("websocket: bad input")
)

// protocolError is a client's violation of the protocol.
type protocolError struct {
	code  string
	close int
	msg   string
}

func (e *protocolError) Error() string { return "websocket: " + e.code + ": " + e.msg }
func (e *protocolError) Unwrap() error { return ErrBadInput }

func bad(code string, closeCode int, format string, args ...any) error {
	return &protocolError{code: code, close: closeCode, msg: fmt.Sprintf(format, args...)}
}

// NewHandler returns a handler running run for each connection.
func NewHandler(cfg Config, run transport.Factory) *Handler {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 200
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, run: run, log: cfg.Logger, conns: map[*conn]struct{}{}}
	h.up = gws.Upgrader{
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
		CheckOrigin:     h.checkOrigin,
	}
	return h
}

func (h *Handler) checkOrigin(r *http.Request) bool {
	return transport.OriginAllowed(r, h.cfg.Origins)
}

// Sessions returns the number of live sessions.
func (h *Handler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown refuses new sessions, ends live ones with close code 1001, and
// waits for them to finish or ctx to end.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	for c := range h.conns {
		c.close(errShutdown)
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// Count the session before the upgrade, so that concurrent requests
	// cannot all pass the check.
	if h.active >= h.cfg.MaxSessions {
		h.mu.Unlock()
		http.Error(w, "too many sessions", http.StatusServiceUnavailable)
		return
	}
	h.active++
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
		h.wg.Done()
	}()

	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := newConn(ws, h.log)
	h.mu.Lock()
	h.conns[c] = struct{}{}
	closing := h.closing
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
	if closing {
		c.close(errShutdown)
	}
	c.serve(r.Context(), h)
}

// conn is one WebSocket session.
type conn struct {
	ws    *gws.Conn
	log   *slog.Logger
	id    string
	start time.Time

	out chan outMsg
	// outMu makes close and enqueue exclusive, so that nothing is queued
	// after the error event that close queues.
	outMu     sync.Mutex
	closeOnce sync.Once
	closed    chan struct{} // closed by close
	wdone     chan struct{} // closed when the writer exits
	closeErr  error
	// closeCode and closeReason are set by close, before closed is closed.
	closeCode   int
	closeReason string

	in, outF frame.Format
	first    *inMsg // a first message that was not "start"
}

type outMsg struct {
	text bool
	data []byte
}

type inMsg struct {
	binary bool
	data   []byte
}

func newConn(ws *gws.Conn, log *slog.Logger) *conn {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c := &conn{
		ws: ws, id: id, start: time.Now(),
		log:    log.With("session", id, "transport", "websocket"),
		out:    make(chan outMsg, 512),
		closed: make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	ws.SetReadLimit(MaxMessage)
	return c
}

func (c *conn) serve(ctx context.Context, h *Handler) {
	go c.writer()
	// Once the session is closed, a client that neither answers the close
	// nor sends anything must not keep the reader (and so Feed) blocked.
	served := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-c.closed:
		case <-served:
			return
		}
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-t.C:
			c.ws.NetConn().Close()
		case <-served:
		}
	})
	defer func() {
		<-c.wdone
		c.ws.Close()
		close(served)
		watch.Wait()
	}()

	if err := c.handshake(h.cfg.StartTimeout); err != nil {
		c.close(err)
		return
	}
	in, err := transport.NewInput(c.in, h.cfg.PipelineFormat)
	if err != nil {
		c.close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: c.outF})
	s := &transport.Session{
		ID: c.id, In: c.in, Out: c.outF,
		Input: in, Output: play,
		Observer: observer{c},
		Feed:     c.feed,
		Notify:   c.notify,
		Close:    c.close,
	}
	c.log.Info("session started", "in_rate", c.in.SampleRate, "out_rate", c.outF.SampleRate)
	err = h.run(ctx, s)
	c.close(err)
	if err != nil && !errors.Is(err, ErrBadInput) && !errors.Is(err, errShutdown) && !errors.Is(err, errClientGone) && !errors.Is(err, context.Canceled) {
		c.log.Warn("session failed", "err", err)
	} else {
		c.log.Info("session ended", "err", err)
	}
}

// handshake reads the optional start message and fixes the formats.
func (c *conn) handshake(timeout time.Duration) error {
	c.in = frame.Format{SampleRate: DefaultRate, Channels: 1}
	c.outF = c.in
	c.ws.SetReadDeadline(time.Now().Add(timeout))
	defer c.ws.SetReadDeadline(time.Time{})
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return c.readError(err)
	}
	if typ == gws.BinaryMessage {
		c.first = &inMsg{binary: true, data: data}
		return nil
	}
	m, err := parseText(data)
	if err != nil {
		return err
	}
	if m.Type != "start" {
		c.first = &inMsg{data: data}
		return nil
	}
	rate := m.SampleRate
	if rate == 0 {
		rate = DefaultRate
	}
	if !protocolRate(rate) {
		return bad("bad_start", 1008, "sample_rate %d not supported", rate)
	}
	outRate := m.OutputSampleRate
	if outRate == 0 {
		outRate = rate
	}
	if !protocolRate(outRate) {
		return bad("bad_start", 1008, "output_sample_rate %d not supported", outRate)
	}
	c.in = frame.Format{SampleRate: rate, Channels: 1}
	c.outF = frame.Format{SampleRate: outRate, Channels: 1}
	return nil
}

// protocolRate reports whether hz is one of the sample rates of
// docs/protocol.md.
func protocolRate(hz int) bool {
	switch hz {
	case 8000, 16000, 22050, 24000, 44100, 48000:
		return true
	}
	return false
}

// readError maps a failed read to the session's end: an oversized message
// is the client's fault (the WebSocket layer has already closed with 1009),
// a close or a dropped connection means the client went away.
func (c *conn) readError(err error) error {
	if errors.Is(err, gws.ErrReadLimit) {
		return bad("too_large", 1009, "message over %d bytes", MaxMessage)
	}
	select {
	case <-c.closed:
		return c.closeErr
	default:
	}
	return fmt.Errorf("%w: %w", errClientGone, err)
}

type clientMsg struct {
	Type             string `json:"type"`
	SampleRate       int    `json:"sample_rate"`
	OutputSampleRate int    `json:"output_sample_rate"`
	Text             string `json:"text"`
}

func parseText(data []byte) (clientMsg, error) {
	var m clientMsg
	if !utf8.Valid(data) {
		return m, bad("invalid_utf8", 1007, "text message is not valid UTF-8")
	}
	trimmed := strings.TrimSpace(string(data))
	if !strings.HasPrefix(trimmed, "{") {
		return m, bad("invalid_json", 1007, "text message is not a JSON object")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, bad("invalid_json", 1007, "%v", err)
	}
	switch m.Type {
	case "start", "text", "end":
	case "":
		return m, bad("unknown_type", 1008, "message has no type")
	default:
		return m, bad("unknown_type", 1008, "unknown message type %q", m.Type)
	}
	return m, nil
}

// feed implements transport.Session.Feed.
func (c *conn) feed(ctx context.Context, p *pipeline.Pipeline) error {
	c.sendEvent(event{Type: "ready", Turn: p.Turn(), SessionID: c.id, SampleRate: c.in.SampleRate, OutputSampleRate: c.outF.SampleRate}, true)
	if m := c.first; m != nil {
		c.first = nil
		if done, err := c.handle(ctx, p, m.binary, m.data); done || err != nil {
			return err
		}
	}
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return c.readError(err)
		}
		if done, err := c.handle(ctx, p, typ == gws.BinaryMessage, data); done || err != nil {
			return err
		}
	}
}

// handle processes one client message; done reports the client ended.
func (c *conn) handle(ctx context.Context, p *pipeline.Pipeline, binary bool, data []byte) (done bool, err error) {
	if binary {
		pcm, err := decodeAudio(c.in, data)
		if err != nil || len(pcm) == 0 {
			return false, err
		}
		return false, p.Push(ctx, &frame.InputAudio{Format: c.in, Samples: pcm})
	}
	m, err := parseText(data)
	if err != nil {
		return false, err
	}
	switch m.Type {
	case "start":
		return false, bad("bad_start", 1008, "start must be the first message")
	case "text":
		if len(m.Text) > MaxText {
			return false, bad("too_large", 1009, "text of %d bytes is over %d", len(m.Text), MaxText)
		}
		text := strings.TrimSpace(m.Text)
		if text == "" {
			return false, nil
		}
		// Typed input interrupts the bot like speech does.
		p.Interrupt("user typed")
		if err := p.Push(ctx, &frame.Interruption{Reason: "user typed"}); err != nil {
			return false, err
		}
		return false, p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true})
	case "end":
		return true, p.Push(ctx, &frame.End{Reason: "client ended"})
	}
	return false, nil
}

// decodeAudio checks a binary message against the protocol (whole PCM16
// samples, at most one second of audio in format f) and decodes it into a
// new slice. An empty message decodes to no samples.
func decodeAudio(f frame.Format, data []byte) ([]int16, error) {
	if len(data)%2 != 0 {
		return nil, bad("odd_audio", 1007, "audio message of %d bytes is not whole PCM16 samples", len(data))
	}
	if len(data) > 2*f.SampleRate*f.Channels {
		return nil, bad("too_large", 1009, "audio message of %d bytes is over one second", len(data))
	}
	if len(data) == 0 {
		return nil, nil
	}
	pcm, err := audio.DecodePCM16(make([]int16, 0, len(data)/2), data)
	if err != nil {
		return nil, bad("odd_audio", 1007, "%v", err)
	}
	return pcm, nil
}

// WriteAudio implements transport.AudioWriter.
func (c *conn) WriteAudio(pcm []int16) error {
	c.enqueue(outMsg{data: audio.EncodePCM16(make([]byte, 0, 2*len(pcm)), pcm)}, true)
	return nil
}

// enqueue hands a message to the writer. When the client cannot keep up, an
// optional message is dropped; a required one ends the session.
func (c *conn) enqueue(m outMsg, must bool) {
	c.outMu.Lock()
	select {
	case <-c.closed:
		c.outMu.Unlock()
		return
	default:
	}
	select {
	case c.out <- m:
		c.outMu.Unlock()
	default:
		c.outMu.Unlock()
		if must {
			c.close(errSlowClient)
		}
	}
}

// close ends the session: err nil is a normal end (1000), otherwise an error
// event and a close code derived from err. Idempotent.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.outMu.Lock()
		defer c.outMu.Unlock()
		c.closeErr = err
		code, reason := gws.CloseNormalClosure, "end"
		switch {
		case errors.Is(err, errClientGone):
			// Nobody is listening for an error event.
			code, reason = gws.CloseGoingAway, ""
		case err != nil && !errors.Is(err, context.Canceled):
			var ecode string
			ecode, code = errorCode(err)
			reason = ecode
			msg := err.Error()
			b, _ := json.Marshal(event{Type: "error", Code: ecode, Message: msg, TMs: time.Since(c.start).Milliseconds()})
			select {
			case c.out <- outMsg{text: true, data: b}:
			default:
			}
		}
		c.closeCode, c.closeReason = code, reason
		close(c.closed)
	})
}

// writer is the connection's only writer. After close it flushes what is
// queued, sends the close frame, and unblocks the reader.
func (c *conn) writer() {
	defer close(c.wdone)
	write := func(m outMsg) error {
		typ := gws.BinaryMessage
		if m.text {
			typ = gws.TextMessage
		}
		c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return c.ws.WriteMessage(typ, m.data)
	}
	for {
		select {
		case m := <-c.out:
			if err := write(m); err != nil {
				c.close(fmt.Errorf("%w: write: %w", errClientGone, err))
				c.ws.Close()
				return
			}
		case <-c.closed:
			for {
				select {
				case m := <-c.out:
					if write(m) != nil {
						c.ws.Close()
						return
					}
					continue
				default:
				}
				break
			}
			msg := gws.FormatCloseMessage(c.closeCode, c.closeReason)
			c.ws.WriteControl(gws.CloseMessage, msg, time.Now().Add(time.Second))
			// The client answers the close (which ends the reader); if it
			// does not, serve's watchdog drops the connection.
			return
		}
	}
}
