// Package websocket is the WebSocket transport: one connection to /ws is one
// conversation, speaking the protocol in docs/protocol.md (PCM16LE audio in
// binary messages, JSON events in text messages). It is an edge on the
// transport core: transport.Conn queues its events and audio, and a
// transport.Admission bounds its sessions.
package websocket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// Kind is the Session.Kind of WebSocket sessions.
const Kind = "websocket"

// closeWait is how long a closed session waits for the client to answer
// the close before the connection is dropped.
const closeWait = time.Second

// Subprotocol is the WebSocket subprotocol of docs/protocol.md. Offering
// it is optional.
const Subprotocol = "voiced"

// Limits of the protocol.
const (
	MaxMessage  = 1 << 20 // bytes of any message
	DefaultRate = 16000
)

// Config configures a Handler. The zero value works.
type Config struct {
	// Origins lists the allowed values of the Origin header (scheme://host:port)
	// besides the server's own host. "*" allows any.
	Origins []string
	// Hosts are the host names the server answers to (besides IP
	// addresses and loopback names; see transport.HostAllowed): a page
	// from the server's own host is allowed only under one of them.
	Hosts []string
	// Admission admits sessions and ends them on Shutdown; share one among
	// a server's edges so that its limit holds across them. Nil: the
	// handler has its own, of MaxSessions.
	Admission *transport.Admission
	// MaxSessions bounds concurrent sessions when Admission is nil
	// (default transport.DefaultMaxSessions); more get HTTP 503.
	MaxSessions int
	// StartTimeout bounds the wait for the first message (default 30 s).
	StartTimeout time.Duration
	// InputIdleTimeout ends a session whose client sends no message for
	// this long after the first (code idle; default 60 s). A client that
	// sends start and then nothing does not hold a session forever.
	InputIdleTimeout time.Duration
	// InputBurst is how far the client's audio may run ahead of real time
	// before the reader paces it (stops reading, so TCP pushes back;
	// default 1 s). InputMaxAhead is how much pacing a session may need in
	// all before it is ended as an abusive sender (code too_fast; default
	// 10 s): a client streaming a file 4× faster than real time is ended
	// after about 13 s of audio, and never costs more than real time.
	InputBurst    time.Duration
	InputMaxAhead time.Duration
	// PipelineFormat is the format of the pipeline's audio (default 16 kHz mono).
	PipelineFormat frame.Format
	Logger         *slog.Logger
}

// Handler serves the WebSocket protocol. Each accepted connection runs the
// Factory on its own goroutine. Shutdown ends live sessions.
type Handler struct {
	cfg Config
	run transport.Factory
	up  gws.Upgrader
	log *slog.Logger
	adm *transport.Admission
}

// errClientGone ends a session whose client closed or dropped the
// connection without an "end" message.
var errClientGone = fmt.Errorf("websocket: %w", transport.ErrClientGone)

// ErrIdle ends a session whose client sent nothing for InputIdleTimeout
// (code idle).
var ErrIdle = fmt.Errorf("websocket: %w", transport.ErrIdle)

// NewHandler returns a handler running run for each connection.
func NewHandler(cfg Config, run transport.Factory) *Handler {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.InputIdleTimeout <= 0 {
		cfg.InputIdleTimeout = 60 * time.Second
	}
	if cfg.InputBurst <= 0 {
		cfg.InputBurst = time.Second
	}
	if cfg.InputMaxAhead <= 0 {
		cfg.InputMaxAhead = 10 * time.Second
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Admission == nil {
		cfg.Admission = transport.NewAdmission(cfg.MaxSessions)
	}
	h := &Handler{cfg: cfg, run: run, log: cfg.Logger, adm: cfg.Admission}
	h.up = gws.Upgrader{
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
		CheckOrigin:     h.checkOrigin,
		// Selected when a browser offers it beside a credential
		// ("bearer.TOKEN", docs/security.md): a browser fails a
		// connection whose offered subprotocols get no answer.
		Subprotocols: []string{Subprotocol},
	}
	return h
}

func (h *Handler) checkOrigin(r *http.Request) bool {
	return transport.OriginAllowed(r, h.cfg.Origins, h.cfg.Hosts...)
}

// Sessions returns the number of live sessions of the handler's Admission
// (of every edge that shares it).
func (h *Handler) Sessions() int { return h.adm.Sessions() }

// Shutdown shuts the handler's Admission down: it refuses new sessions,
// ends live ones (an error event with code shutting_down, then close code
// 1001), and waits for them to finish or ctx to end. A shared Admission
// ends the sessions of every edge that shares it.
func (h *Handler) Shutdown(ctx context.Context) error { return h.adm.Shutdown(ctx) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Admit the session before the upgrade, so that concurrent requests
	// cannot all pass the limit.
	t, err := h.adm.AdmitFrom(transport.ClientAddr(r))
	if err != nil {
		transport.Refuse(w, err)
		return
	}
	defer t.Release()
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	transport.BoundSendBuffer(ws.NetConn())
	c := newConn(ws, h.log)
	c.idle = h.cfg.InputIdleTimeout
	c.pace = transport.Pacer{Burst: h.cfg.InputBurst, MaxAhead: h.cfg.InputMaxAhead}
	t.Attach(c.Close)
	c.serve(r.Context(), h)
}

// conn is one WebSocket session: the shared skeleton plus the socket.
type conn struct {
	*transport.Conn
	ws    *gws.Conn
	wdone chan struct{} // closed when the writer exits

	in, outF frame.Format
	first    *inMsg // a first message that was not "start"

	idle time.Duration   // input_idle_timeout
	pace transport.Pacer // on the reader's goroutine only
}

type inMsg struct {
	binary bool
	data   []byte
}

func newConn(ws *gws.Conn, log *slog.Logger) *conn {
	ws.SetReadLimit(MaxMessage)
	return &conn{
		Conn:  transport.NewConn(transport.ConnConfig{Kind: Kind, Logger: log}),
		ws:    ws,
		wdone: make(chan struct{}),
	}
}

func (c *conn) serve(ctx context.Context, h *Handler) {
	go c.writer()
	// Once the session is closed, a client that neither answers the close
	// nor sends anything must not keep the reader (and so Feed) blocked.
	served := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-c.Done():
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
		c.Close(err)
		return
	}
	in, err := transport.NewInput(c.in, h.cfg.PipelineFormat)
	if err != nil {
		c.Close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: c.outF})
	s := c.Session(c.in, c.outF, in, play, c.feed)
	c.Logger().Info("session started", "in_rate", c.in.SampleRate, "out_rate", c.outF.SampleRate)
	err = h.run(ctx, s)
	c.Close(err)
	c.LogEnd(err)
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
		return transport.BadInput("bad_start", "sample_rate %d not supported", rate)
	}
	outRate := m.OutputSampleRate
	if outRate == 0 {
		outRate = rate
	}
	if !protocolRate(outRate) {
		return transport.BadInput("bad_start", "output_sample_rate %d not supported", outRate)
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
		return transport.BadInput("too_large", "message over %d bytes", MaxMessage)
	}
	select {
	case <-c.Done():
		return c.Err()
	default:
	}

	return fmt.Errorf("%w: %w", errClientGone, err)
}

// parseText parses a text message: the WebSocket protocol has "start".
func parseText(data []byte) (transport.Message, error) { return transport.ParseMessage(data, true) }

// feed implements transport.Session.Feed.
func (c *conn) feed(ctx context.Context, p transport.Pusher) error {
	c.Ready(p, c.in, c.outF)
	if m := c.first; m != nil {
		c.first = nil
		if done, err := c.handle(ctx, p, m.binary, m.data); done || err != nil {
			return err
		}
	}
	for {
		c.ws.SetReadDeadline(time.Now().Add(c.idle))
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.Err() == nil {
				return fmt.Errorf("%w: nothing received for %v", ErrIdle, c.idle)
			}
			return c.readError(err)
		}
		if done, err := c.handle(ctx, p, typ == gws.BinaryMessage, data); done || err != nil {
			return err
		}
	}
}

// handle processes one client message; done reports the client ended.
func (c *conn) handle(ctx context.Context, p transport.Pusher, binary bool, data []byte) (done bool, err error) {
	if binary {
		pcm, err := decodeAudio(c.in, data)
		if err != nil || len(pcm) == 0 {
			return false, err
		}
		wait, err := c.pace.Add(time.Now(), c.in.Duration(len(pcm)))
		if err != nil {
			return false, err
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false, context.Cause(ctx)
			}
		}
		return false, p.Push(ctx, &frame.InputAudio{Format: c.in, Samples: pcm})
	}
	m, err := parseText(data)
	if err != nil {
		return false, err
	}
	if m.Type == "start" {
		return false, transport.BadInput("bad_start", "start must be the first message")
	}
	return transport.Deliver(ctx, p, m)
}

// decodeAudio checks a binary message against the protocol (whole PCM16
// samples, at most one second of audio in format f) and decodes it into a
// new slice. An empty message decodes to no samples.
func decodeAudio(f frame.Format, data []byte) ([]int16, error) {
	if len(data)%2 != 0 {
		return nil, transport.BadInput("odd_audio", "audio message of %d bytes is not whole PCM16 samples", len(data))
	}
	if len(data) > 2*f.SampleRate*f.Channels {
		return nil, transport.BadInput("too_large", "audio message of %d bytes is over one second", len(data))
	}
	if len(data) == 0 {
		return nil, nil
	}
	pcm, err := audio.DecodePCM16(make([]int16, 0, len(data)/2), data)
	if err != nil {
		return nil, transport.BadInput("odd_audio", "%v", err)
	}
	return pcm, nil
}

// WriteAudio implements transport.AudioWriter: audio is a required
// message, so a client that cannot take it is too slow.
func (c *conn) WriteAudio(pcm []int16) error {
	c.Enqueue(transport.Outgoing{Binary: true, Data: audio.EncodePCM16(make([]byte, 0, 2*len(pcm)), pcm)}, true)
	return nil
}

// writeError is the end of a session whose write failed: a write that
// timed out means the client stopped reading (slow_client, as
// docs/protocol.md says); anything else, that it went away.
func writeError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("websocket: write: %w (%w)", transport.ErrSlowClient, err)
	}
	return fmt.Errorf("%w: write: %w", errClientGone, err)
}

// errorCode gives the protocol's error code and close code for the error
// that ends a session (RFC 6455 §7.4.1 close codes).
func errorCode(err error) (string, int) {
	code := transport.ErrorCode(err)
	switch code {
	case "":
		if errors.Is(err, transport.ErrClientGone) {
			return "", gws.CloseGoingAway
		}
		return "", gws.CloseNormalClosure
	case "invalid_utf8", "invalid_json", "odd_audio":
		return code, gws.CloseInvalidFramePayloadData // 1007
	case "unknown_type", "bad_start", "slow_client", "idle", "too_fast":
		return code, gws.ClosePolicyViolation // 1008
	case "too_large":
		return code, gws.CloseMessageTooBig // 1009
	case "shutting_down":
		return code, gws.CloseGoingAway // 1001
	}
	if errors.Is(err, transport.ErrEnded) {
		return code, gws.CloseNormalClosure // a polite end: max_duration, user_idle
	}
	return code, gws.CloseInternalServerErr // 1011
}

// writer is the connection's only writer. After close it flushes what is
// queued, sends the close frame, and unblocks the reader.
func (c *conn) writer() {
	defer close(c.wdone)
	write := func(m transport.Outgoing) error {
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
				c.Close(writeError(err))
				c.ws.Close()
				return
			}
		case <-c.Done():
			for {
				select {
				case m := <-c.Outgoing():
					if write(m) != nil {
						c.ws.Close()
						return
					}
					continue
				default:
				}
				break
			}
			err := c.Err()
			code, closeCode := errorCode(err)
			reason := code
			switch {
			case err == nil || errors.Is(err, context.Canceled):
				reason = "end"
			case errors.Is(err, transport.ErrClientGone):
				reason = "" // nobody is listening
			}
			msg := gws.FormatCloseMessage(closeCode, reason)
			c.ws.WriteControl(gws.CloseMessage, msg, time.Now().Add(time.Second))
			// The client answers the close (which ends the reader); if it
			// does not, serve's watchdog drops the connection.
			return
		}
	}
}
