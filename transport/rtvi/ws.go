package rtvi

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

// KindWS is the Session.Kind of sessions on Pipecat's WebSocket transport.
const KindWS = "rtvi-websocket"

// Audio defaults of Pipecat's WebSocket transport: the client records at
// 16 kHz and plays what it receives at 24 kHz, whatever the frame's
// sample_rate says.
const (
	DefaultInputRate  = 16000
	DefaultOutputRate = 24000
)

// MaxFrame bounds a binary message from the client, in bytes.
const MaxFrame = 1 << 20

// ClientQueue is how much audio client-js may send at once on top of
// the input burst: it records from the moment its devices start and
// sends what it queued until the session is ready in one go. The pipeline
// takes that backlog faster than real time, as Pipecat's server does,
// instead of holding the client to real time behind it for the whole
// session.
const ClientQueue = 3 * time.Second

// WSConfig configures a WSHandler. The zero value works.
type WSConfig struct {
	// Origins and Hosts are the origin check of transport.OriginAllowed.
	Origins, Hosts []string
	// Admission admits sessions that do not come from a start (a client
	// given the wsUrl directly); share the server's. Nil: its own, of
	// transport.DefaultMaxSessions.
	Admission *transport.Admission
	// Registry holds the starts of POST /start: a wsUrl's session
	// parameter claims one (its ticket and its body). Nil: no starts.
	Registry *Registry
	// OutputRate is the rate of the bot's audio: the client's player rate
	// (default DefaultOutputRate, client-js's default playerSampleRate).
	OutputRate int
	// InputRate is the client's recording rate when its first frame is
	// not audio (default DefaultInputRate); a session's audio must keep
	// one rate.
	InputRate int
	// InputIdleTimeout ends a session whose client sends nothing for this
	// long (default 60 s). InputBurst and InputMaxAhead pace the client's
	// audio (transport.Pacer; defaults 1 s and 10 s); the burst is
	// InputBurst + ClientQueue.
	InputIdleTimeout, InputBurst, InputMaxAhead time.Duration
	Logger                                      *slog.Logger
}

// WSHandler serves Pipecat's WebSocket transport
// (@pipecat-ai/websocket-transport with its ProtobufFrameSerializer): one
// connection is one session; binary messages only, each a pipecat.Frame
// (see DecodeFrame): the client's audio in AudioRawFrames, RTVI messages
// in MessageFrames, both ways. The bot's audio is paced in real time by
// transport.Playout; barge-in stops it (the transport has no message to
// clear the client's buffer, which holds little for that reason). A
// malformed frame, a text message or a change of audio format ends the
// session with an RTVI error (fatal).
type WSHandler struct {
	cfg WSConfig
	run transport.Factory
	up  gws.Upgrader
	adm *transport.Admission
}

// NewWSHandler returns a handler running run for each connection.
func NewWSHandler(cfg WSConfig, run transport.Factory) *WSHandler {
	if cfg.OutputRate <= 0 {
		cfg.OutputRate = DefaultOutputRate
	}
	if cfg.InputRate <= 0 {
		cfg.InputRate = DefaultInputRate
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Admission == nil {
		cfg.Admission = transport.NewAdmission(0)
	}
	h := &WSHandler{cfg: cfg, run: run, adm: cfg.Admission}
	h.up = gws.Upgrader{
		ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10,
		CheckOrigin: func(r *http.Request) bool { return transport.OriginAllowed(r, cfg.Origins, cfg.Hosts...) },
	}
	return h
}

// ServeHTTP implements http.Handler. With ?session=ID it connects the
// start ID (404 if there is none); without, it admits a new session.
func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		t     *transport.Ticket
		start Start
		err   error
	)
	if id := r.URL.Query().Get("session"); id != "" {
		if h.cfg.Registry == nil {
			http.Error(w, ErrNoStart.Error(), http.StatusNotFound)
			return
		}
		start, t, err = h.cfg.Registry.Claim(id, TransportWebSocket)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
	} else if t, err = h.adm.AdmitFrom(transport.ClientAddr(r)); err != nil {
		transport.Refuse(w, err)
		return
	}
	defer t.Release()
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	transport.BoundSendBuffer(ws.NetConn())
	ws.SetReadLimit(MaxFrame)
	c := &wsConn{
		Conn:  transport.NewConn(transport.ConnConfig{Kind: KindWS, Logger: h.cfg.Logger, ErrorMessage: ErrorMessage}),
		ws:    ws,
		wdone: make(chan struct{}),
		in:    frame.Format{SampleRate: h.cfg.InputRate, Channels: 1},
		out:   frame.Format{SampleRate: h.cfg.OutputRate, Channels: 1},
		idle:  h.cfg.InputIdleTimeout,
		pace:  transport.Pacer{Burst: h.cfg.InputBurst + ClientQueue, MaxAhead: h.cfg.InputMaxAhead},
	}
	c.bridge = NewBridge(Config{
		SessionID: c.ID(), Metadata: start.Body, Logger: c.Logger(),
		Send: func(msg []byte, optional bool) { c.Enqueue(transport.Outgoing{Data: msg}, !optional) },
	})
	t.Attach(c.Close)
	c.serve(r.Context(), h, start)
}

// wsConn is one session: the shared skeleton, the socket and the bridge.
type wsConn struct {
	*transport.Conn
	ws     *gws.Conn
	wdone  chan struct{}
	bridge *Bridge

	in, out frame.Format
	first   *WireFrame // the first frame, read to learn the input rate
	idle    time.Duration
	pace    transport.Pacer // the reader's goroutine only
}

func (c *wsConn) serve(ctx context.Context, h *WSHandler, start Start) {
	go c.writer()
	served := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-c.Done():
		case <-served:
			return
		}
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			c.ws.NetConn().Close()
		case <-served:
		}
	})
	defer func() {
		<-c.wdone
		// The close frame is sent: read until the client answers it (or
		// the watchdog gives up), so that closing a socket with the
		// client's audio still unread does not reset the connection
		// under the close frame (the client would see 1006, not ours).
		c.ws.SetReadDeadline(time.Now().Add(time.Second))
		for {
			if _, _, err := c.ws.NextReader(); err != nil {
				break
			}
		}
		c.ws.Close()
		close(served)
		watch.Wait()
	}()
	// The first frame fixes the input rate when it is audio; client-js
	// sends client-ready first, and then audio at its recording rate.
	f, err := c.read()
	if err != nil {
		c.Close(err)
		return
	}
	if f.Kind == FrameAudio && f.SampleRate > 0 {
		c.in.SampleRate = f.SampleRate
	}
	c.first = &f
	in, err := transport.NewInput(c.in, frame.Mono16k)
	if err != nil {
		c.Close(transport.BadInput("bad_frame", "input audio: %v", err))
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: c.out})
	s := &transport.Session{
		ID: c.ID(), Kind: c.Kind(), In: c.in, Out: c.out, Start: start.Body, Metadata: transport.StartMetadata(start.Body),
		Input: in, Output: play, Observer: c.bridge, Notify: c.bridge.Notify,
		Feed: c.feed, Close: c.Close,
	}
	c.Logger().Info("session started", "in_rate", c.in.SampleRate, "out_rate", c.out.SampleRate, "started", start.ID != "")
	err = h.run(ctx, s)
	c.Close(err)
	c.LogEnd(err)
}

// read reads one frame, within the idle timeout.
func (c *wsConn) read() (WireFrame, error) {
	c.ws.SetReadDeadline(time.Now().Add(c.idle))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, gws.ErrReadLimit):
			return WireFrame{}, transport.BadInput("too_large", "message over %d bytes", MaxFrame)
		case errors.As(err, &ne) && ne.Timeout() && c.Err() == nil:
			return WireFrame{}, fmt.Errorf("rtvi: %w: nothing received for %v", transport.ErrIdle, c.idle)
		}
		if e := c.Err(); e != nil {
			return WireFrame{}, e
		}
		return WireFrame{}, fmt.Errorf("rtvi: %w: %w", transport.ErrClientGone, err)
	}
	if typ != gws.BinaryMessage {
		return WireFrame{}, transport.BadInput("bad_frame", "a text message: this transport takes protobuf frames in binary messages")
	}
	return DecodeFrame(data)
}

// feed implements transport.Session.Feed.
func (c *wsConn) feed(ctx context.Context, p transport.Pusher) error {
	for {
		var f WireFrame
		if c.first != nil {
			f, c.first = *c.first, nil
		} else {
			var err error
			if f, err = c.read(); err != nil {
				return err
			}
		}
		if done, err := c.handle(ctx, p, f); done || err != nil {
			return err
		}
	}
}

// handle acts on one frame from the client; done reports the client ended
// the session.
func (c *wsConn) handle(ctx context.Context, p transport.Pusher, f WireFrame) (bool, error) {
	switch f.Kind {
	case FrameMessage:
		return c.bridge.Handle(ctx, p, f.Data)
	case FrameText:
		return transport.Deliver(ctx, p, transport.Message{Type: "text", Text: f.Text})
	case FrameTranscription:
		return false, nil // the client's own transcription: voiced recognizes the audio itself
	}
	if f.SampleRate != 0 && f.SampleRate != c.in.SampleRate || f.Channels > 1 {
		return false, transport.BadInput("bad_frame", "audio of %d Hz, %d channels: this session takes %d Hz mono", f.SampleRate, f.Channels, c.in.SampleRate)
	}
	if len(f.Audio)%2 != 0 {
		return false, transport.BadInput("odd_audio", "audio of %d bytes is not whole PCM16 samples", len(f.Audio))
	}
	if len(f.Audio) == 0 {
		return false, nil
	}
	if len(f.Audio) > 2*c.in.SampleRate {
		return false, transport.BadInput("too_large", "audio frame of %d bytes is over one second", len(f.Audio))
	}
	pcm, err := audio.DecodePCM16(make([]int16, 0, len(f.Audio)/2), f.Audio)
	if err != nil {
		return false, transport.BadInput("odd_audio", "%v", err)
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

// WriteAudio implements transport.AudioWriter: one AudioRawFrame per
// chunk the playout paces out.
func (c *wsConn) WriteAudio(pcm []int16) error {
	c.Enqueue(transport.Outgoing{Binary: true, Data: EncodeAudio(pcm, c.out.SampleRate, 1)}, true)
	return nil
}

// closeCode gives the WebSocket close code for the error that ends a
// session (RFC 6455 §7.4.1).
func closeCode(err error) int {
	switch transport.ErrorCode(err) {
	case "":
		if errors.Is(err, transport.ErrClientGone) {
			return gws.CloseGoingAway
		}
		return gws.CloseNormalClosure
	case "invalid_utf8", "invalid_json", "odd_audio", "bad_frame":
		return gws.CloseInvalidFramePayloadData
	case "too_large":
		return gws.CloseMessageTooBig
	case "shutting_down":
		return gws.CloseGoingAway
	case "internal":
		return gws.CloseInternalServerErr
	}
	return gws.ClosePolicyViolation
}

// writer is the connection's only writer: RTVI messages go out in
// MessageFrames, audio as encoded. After close it flushes what is queued
// and sends the close frame.
func (c *wsConn) writer() {
	defer close(c.wdone)
	write := func(m transport.Outgoing) error {
		data := m.Data
		if !m.Binary {
			data = EncodeMessage(m.Data)
		}
		c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return c.ws.WriteMessage(gws.BinaryMessage, data)
	}
	for {
		select {
		case m := <-c.Outgoing():
			if err := write(m); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					c.Close(fmt.Errorf("rtvi: write: %w (%w)", transport.ErrSlowClient, err))
				} else {
					c.Close(fmt.Errorf("rtvi: write: %w: %w", transport.ErrClientGone, err))
				}
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
			reason := transport.ErrorCode(err)
			if reason == "" && !errors.Is(err, transport.ErrClientGone) {
				reason = "end"
			}
			c.ws.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(closeCode(err), reason), time.Now().Add(time.Second))
			return
		}
	}
}
