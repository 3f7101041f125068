// Package webrtc is the WebRTC transport: a browser (or any WebRTC peer)
// POSTs an SDP offer to /webrtc/offer, WHIP-style, and gets the answer with
// every ICE candidate already in it (no trickle). One peer connection is one
// conversation: the peer's microphone arrives as an Opus track, the bot's
// voice leaves as an Opus track, and the protocol's JSON events travel on a
// data channel labelled "events" (docs/protocol.md, "WebRTC").
//
// Built on github.com/pion/webrtc/v4 (W3C WebRTC 1.0, RFC 8829 JSEP) and
// libopus (RFC 6716, RTP payload RFC 7587).
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/events"
)

// Limits of the protocol.
const (
	MaxOffer   = 64 << 10 // bytes of an offer request body
	MaxMessage = 64 << 10 // bytes of a data-channel message
	MaxText    = 4096     // bytes of typed text
	// EventsLabel is the label of the data channel that carries events.
	EventsLabel = "events"
)

// Config configures a Handler. The zero value works.
type Config struct {
	// Origins lists the allowed values of the Origin header (scheme://host:port)
	// besides the server's own host. "*" allows any.
	Origins []string
	// MaxSessions bounds concurrent sessions (default 50); more get HTTP 503.
	MaxSessions int
	// ConnectTimeout bounds the wait, after the answer, for ICE to connect
	// and the peer's audio track to arrive (default 15 s).
	ConnectTimeout time.Duration
	// IdleTimeout ends a session that has received neither audio nor a
	// data-channel message for this long (default 30 s).
	IdleTimeout time.Duration
	// GatherTimeout bounds ICE candidate gathering for an answer (default 5 s).
	GatherTimeout time.Duration
	// JitterDelay is how many packets a gap in the peer's audio is waited
	// on before it is concealed (default DefaultJitterDelay).
	JitterDelay int
	// Loopback keeps ICE on the loopback interface (UDP over IPv4 on lo):
	// for tests and for a server that only takes local clients.
	Loopback bool
	// PipelineFormat is the format of the pipeline's audio (default 16 kHz mono).
	PipelineFormat frame.Format
	Logger         *slog.Logger
}

// Handler serves POST /webrtc/offer. Each accepted offer runs the Factory
// on its own goroutine until the session ends. Safe for concurrent use;
// Shutdown ends live sessions.
type Handler struct {
	cfg    Config
	run    transport.Factory
	log    *slog.Logger
	api    *pion.API
	apiErr error

	mu      sync.Mutex
	conns   map[*conn]struct{}
	active  int // offers admitted and sessions not yet finished (≥ len(conns))
	closing bool
	wg      sync.WaitGroup
}

var (
	errShutdown = transport.ErrShuttingDown
	// ErrBadInput wraps every protocol violation by the client.
	ErrBadInput = errors.New("webrtc: bad input")
	// ErrPeerGone ends a session whose peer closed the connection or its
	// event channel, or whose ICE connection failed.
	ErrPeerGone = errors.New("webrtc: peer went away")
	// ErrIdle ends a session that received nothing for IdleTimeout, or
	// that never connected within ConnectTimeout.
	ErrIdle = errors.New("webrtc: peer idle")
	// ErrSlowClient ends a session whose peer does not read its events.
	ErrSlowClient = errors.New("webrtc: client too slow to receive")
)

// protocolError is a client's violation of the data-channel protocol.
type protocolError struct{ code, msg string }

func (e *protocolError) Error() string { return "webrtc: " + e.code + ": " + e.msg }
func (e *protocolError) Unwrap() error { return ErrBadInput }

func bad(code, format string, args ...any) error {
	return &protocolError{code: code, msg: fmt.Sprintf(format, args...)}
}

// NewHandler returns a handler running run for each session.
func NewHandler(cfg Config, run transport.Factory) *Handler {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 50
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.JitterDelay <= 0 {
		cfg.JitterDelay = DefaultJitterDelay
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, run: run, log: cfg.Logger, conns: map[*conn]struct{}{}}
	h.api, h.apiErr = newAPI(cfg)
	return h
}

// opusCodec is the only codec offered: Opus, 48 kHz, with in-band FEC.
var opusCodec = pion.RTPCodecParameters{
	RTPCodecCapability: pion.RTPCodecCapability{
		MimeType: pion.MimeTypeOpus, ClockRate: opusRate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	},
	PayloadType: 111,
}

func newAPI(cfg Config) (*pion.API, error) {
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(opusCodec, pion.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc: register opus: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	var se pion.SettingEngine
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if cfg.Loopback {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	}
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), nil
}

// LoopbackAddr reports whether a listen address (host:port) only accepts
// clients on this machine, in which case Config.Loopback suits it.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// Shutdown refuses new offers, ends live sessions (an error event with code
// shutting_down, then the peer connection is closed) and waits for them to
// finish or ctx to end.
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

// offerJSON is the JSON form of an offer or answer (RTCSessionDescriptionInit).
type offerJSON struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// readOffer reads the request body: application/sdp, or application/json
// {"type":"offer","sdp":"..."}. It reports whether the client wants JSON.
func readOffer(w http.ResponseWriter, r *http.Request) (offer string, asJSON bool, status int, err error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", false, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/sdp or application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", false, http.StatusRequestEntityTooLarge, fmt.Errorf("offer over %d bytes", MaxOffer)
		}
		return "", false, http.StatusBadRequest, fmt.Errorf("reading offer: %v", err)
	}
	switch mt {
	case "application/sdp":
		offer = string(body)
	case "application/json":
		asJSON = true
		var o offerJSON
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return "", true, http.StatusBadRequest, fmt.Errorf("offer is not a JSON {type, sdp} object: %v", err)
		}
		if o.Type != "offer" {
			return "", true, http.StatusBadRequest, fmt.Errorf("type %q, want \"offer\"", o.Type)
		}
		offer = o.SDP
	default:
		return "", false, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: want application/sdp or application/json", mt)
	}
	if err := checkOffer(offer); err != nil {
		return "", asJSON, http.StatusBadRequest, err
	}
	return offer, asJSON, 0, nil
}

// checkOffer parses an offer (RFC 8866) and checks that it has what a
// session needs: an audio section that can send Opus.
func checkOffer(offer string) error {
	if !utf8.ValidString(offer) {
		return errors.New("malformed SDP: not UTF-8")
	}
	if strings.TrimSpace(offer) == "" {
		return errors.New("malformed SDP: empty offer")
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return fmt.Errorf("malformed SDP: %v", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "opus/48000") {
				return nil
			}
		}
		return errors.New("the offer's audio section has no Opus (opus/48000)")
	}
	return errors.New("the offer has no audio section")
}

// ServeHTTP implements http.Handler for POST /webrtc/offer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an SDP offer", http.StatusMethodNotAllowed)
		return
	}
	if !h.checkOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if h.apiErr != nil {
		http.Error(w, h.apiErr.Error(), http.StatusInternalServerError)
		return
	}
	offer, asJSON, status, err := readOffer(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if h.active >= h.cfg.MaxSessions {
		h.mu.Unlock()
		http.Error(w, "too many sessions", http.StatusServiceUnavailable)
		return
	}
	h.active++
	h.wg.Add(1)
	h.mu.Unlock()
	release := func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
		h.wg.Done()
	}

	c, answer, status, err := h.accept(r.Context(), offer)
	if err != nil {
		release()
		h.log.Info("offer refused", "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	closing := h.closing
	h.mu.Unlock()
	if closing {
		c.close(errShutdown)
	}
	go func() {
		defer release()
		defer func() {
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
		}()
		c.serve(h)
	}()

	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(offerJSON{Type: "answer", SDP: answer})
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// accept builds the peer connection for offer and returns its answer, with
// the ICE candidates gathered.
func (h *Handler) accept(ctx context.Context, offer string) (*conn, string, int, error) {
	pc, err := h.api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	c, err := newConn(h, pc)
	if err != nil {
		pc.Close()
		return nil, "", http.StatusInternalServerError, err
	}
	fail := func(status int, err error) (*conn, string, int, error) {
		c.pc.Close()
		c.senderWG.Wait()
		return nil, "", status, err
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("bad offer: %v", err))
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("cannot answer the offer: %v", err))
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(http.StatusInternalServerError, fmt.Errorf("webrtc: set local description: %w", err))
	}
	t := time.NewTimer(h.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(http.StatusInternalServerError, errors.New("webrtc: ICE gathering timed out"))
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, ctx.Err())
	}
	return c, pc.LocalDescription().SDP, 0, nil
}

// conn is one WebRTC session.
type conn struct {
	h     *Handler
	pc    *pion.PeerConnection
	log   *slog.Logger
	id    string
	start time.Time

	out      *pion.TrackLocalStaticRTP
	senderWG sync.WaitGroup // the RTCP reader of the sender

	// Set on the playout goroutine only.
	enc    *encoder
	seq    uint16
	ts     uint32
	tsWall time.Time // wall time at which ts is due to play

	track  chan *pion.TrackRemote // the peer's first audio track
	msgs   chan []byte            // data-channel text messages
	lastRx atomic.Int64           // unix nanoseconds of the last packet or message

	dcMu   sync.Mutex
	dc     *pion.DataChannel
	dcOpen chan struct{} // closed when the events channel opens

	evq chan []byte // events for the writer

	// outMu makes close and enqueue exclusive, so that nothing is queued
	// after the error event that close queues.
	outMu     sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
	wdone     chan struct{} // closed when the writer has closed the peer connection
}

func newConn(h *Handler, pc *pion.PeerConnection) (*conn, error) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	enc, err := newEncoder()
	if err != nil {
		return nil, err
	}
	c := &conn{
		h: h, pc: pc, id: id, start: time.Now(), enc: enc,
		log:    h.log.With("session", id, "transport", "webrtc"),
		track:  make(chan *pion.TrackRemote, 1),
		msgs:   make(chan []byte, 64),
		dcOpen: make(chan struct{}),
		evq:    make(chan []byte, 512),
		closed: make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	c.lastRx.Store(time.Now().UnixNano())
	c.out, err = pion.NewTrackLocalStaticRTP(opusCodec.RTPCodecCapability, "audio", "voiced")
	if err != nil {
		return nil, fmt.Errorf("webrtc: output track: %w", err)
	}
	sender, err := pc.AddTrack(c.out)
	if err != nil {
		return nil, fmt.Errorf("webrtc: add track: %w", err)
	}
	// RTCP must be read for the interceptors (NACK, reports) to work; the
	// read fails once the connection is closed.
	c.senderWG.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	})
	pc.OnTrack(func(t *pion.TrackRemote, _ *pion.RTPReceiver) {
		if t.Kind() != pion.RTPCodecTypeAudio {
			return
		}
		select {
		case c.track <- t:
		default: // only the first audio track is heard
		}
	})
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		c.log.Debug("connection state", "state", s.String())
		switch s {
		case pion.PeerConnectionStateFailed:
			c.close(fmt.Errorf("%w: ICE failed", ErrPeerGone))
		case pion.PeerConnectionStateClosed:
			c.close(fmt.Errorf("%w: connection closed", ErrPeerGone))
		}
	})
	pc.OnDataChannel(func(dc *pion.DataChannel) {
		if dc.Label() != EventsLabel {
			return
		}
		c.dcMu.Lock()
		if c.dc != nil {
			c.dcMu.Unlock()
			return
		}
		c.dc = dc
		c.dcMu.Unlock()
		dc.OnOpen(func() { close(c.dcOpen) })
		dc.OnClose(func() { c.close(fmt.Errorf("%w: event channel closed", ErrPeerGone)) })
		dc.OnMessage(func(m pion.DataChannelMessage) {
			c.lastRx.Store(time.Now().UnixNano())
			switch {
			case !m.IsString:
				c.close(bad("invalid_json", "binary data-channel message; send JSON text"))
				return
			case len(m.Data) > MaxMessage:
				c.close(bad("too_large", "message of %d bytes is over %d", len(m.Data), MaxMessage))
				return
			}
			select {
			case c.msgs <- m.Data:
			default:
				c.close(bad("too_many_messages", "more than %d messages waiting", cap(c.msgs)))
			}
		})
	})
	return c, nil
}

// serve runs the session until it ends, then waits for the peer connection
// to be closed.
func (c *conn) serve(h *Handler) {
	go c.writer()
	defer func() {
		<-c.wdone
		c.senderWG.Wait()
	}()
	rate := frame.Format{SampleRate: opusRate, Channels: 1}
	in, err := transport.NewInput(rate, h.cfg.PipelineFormat)
	if err != nil {
		c.close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: rate})
	s := &transport.Session{
		ID: c.id, In: rate, Out: rate,
		Input: in, Output: play,
		Observer: observer{c},
		Feed:     c.feed,
		Notify:   c.notify,
		Close:    c.close,
	}
	c.log.Info("session started")
	// The session outlives the offer's request: its context is its own,
	// and Shutdown ends it through close.
	err = h.run(context.Background(), s)
	c.close(err)
	if err != nil && !errors.Is(err, ErrBadInput) && !errors.Is(err, errShutdown) && !errors.Is(err, ErrPeerGone) &&
		!errors.Is(err, ErrIdle) && !errors.Is(err, context.Canceled) {
		c.log.Warn("session failed", "err", err)
	} else {
		c.log.Info("session ended", "err", err)
	}
}

// clientMsg is a data-channel message from the peer.
type clientMsg struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func parseMessage(data []byte) (clientMsg, error) {
	var m clientMsg
	if !utf8.Valid(data) {
		return m, bad("invalid_utf8", "message is not valid UTF-8")
	}
	if !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return m, bad("invalid_json", "message is not a JSON object")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, bad("invalid_json", "%v", err)
	}
	switch m.Type {
	case "text", "end":
	case "":
		return m, bad("unknown_type", "message has no type")
	default:
		return m, bad("unknown_type", "unknown message type %q", m.Type)
	}
	if len(m.Text) > MaxText {
		return m, bad("too_large", "text of %d bytes is over %d", len(m.Text), MaxText)
	}
	return m, nil
}

// feed implements transport.Session.Feed: it pushes the peer's typed
// messages, and its audio once the track arrives, until the peer ends or
// goes away.
func (c *conn) feed(ctx context.Context, p *pipeline.Pipeline) error {
	c.sendEvent(events.Event{Type: "ready", Turn: p.Turn(), SessionID: c.id, SampleRate: opusRate, OutputSampleRate: opusRate}, true)
	connect := time.NewTimer(c.h.cfg.ConnectTimeout)
	defer connect.Stop()
	idle := time.NewTicker(c.h.cfg.IdleTimeout / 4)
	defer idle.Stop()

	var readc chan error // nil until the track arrives
	stopReader := func() {}
	stop := func() {
		stopReader()
		if readc != nil {
			<-readc
			readc = nil
		}
	}
	defer stop()
	for {
		select {
		case tr := <-c.track:
			connect.Stop()
			rctx, cancel := context.WithCancel(ctx)
			stopReader = cancel
			readc = make(chan error, 1)
			go func() { readc <- c.readAudio(rctx, p, tr) }()
		case <-connect.C:
			return fmt.Errorf("%w: no audio within %v", ErrIdle, c.h.cfg.ConnectTimeout)
		case data := <-c.msgs:
			done, err := c.handle(ctx, p, data, stop)
			if done || err != nil {
				return err
			}
		case err := <-readc:
			readc = nil
			return err
		case <-c.closed:
			return c.closeErr
		case <-ctx.Done():
			return ctx.Err()
		case now := <-idle.C:
			if now.Sub(time.Unix(0, c.lastRx.Load())) > c.h.cfg.IdleTimeout {
				return fmt.Errorf("%w: nothing received for %v", ErrIdle, c.h.cfg.IdleTimeout)
			}
		}
	}
}

// handle processes one data-channel message; done reports the client ended
// (the reader has then been stopped by stop).
func (c *conn) handle(ctx context.Context, p *pipeline.Pipeline, data []byte, stop func()) (done bool, err error) {
	m, err := parseMessage(data)
	if err != nil {
		return false, err
	}
	switch m.Type {
	case "text":
		text := strings.TrimSpace(m.Text)
		if text == "" {
			return false, nil
		}
		p.Interrupt("user typed")
		if err := p.Push(ctx, &frame.Interruption{Reason: "user typed"}); err != nil {
			return false, err
		}
		return false, p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true})
	case "end":
		stop() // no audio after End
		return true, p.Push(ctx, &frame.End{Reason: "client ended"})
	}
	return false, nil
}

// readGap is how long the reader waits for a packet before it releases a
// gap in the jitter buffer.
const readGap = 60 * time.Millisecond

// readAudio reads the peer's RTP, reorders it, decodes it and pushes it
// until ctx ends (nil) or the track ends (ErrPeerGone).
func (c *conn) readAudio(ctx context.Context, p *pipeline.Pipeline, tr *pion.TrackRemote) error {
	dec, err := newDecoder()
	if err != nil {
		return err
	}
	jb := NewJitter(c.h.cfg.JitterDelay, DefaultMaxGap)
	format := frame.Format{SampleRate: opusRate, Channels: 1}
	var units []Unit
	defer func() {
		c.log.Debug("audio in", "lost", jb.Lost, "late", jb.Late, "duplicates", jb.Duplicates, "resets", jb.Resets,
			"fec", dec.FEC, "plc", dec.PLC, "corrupt", dec.Corrupt)
	}()
	for ctx.Err() == nil {
		tr.SetReadDeadline(time.Now().Add(readGap))
		pkt, _, err := tr.ReadRTP()
		units = units[:0]
		switch {
		case err == nil:
			c.lastRx.Store(time.Now().UnixNano())
			units = jb.Push(pkt.SequenceNumber, pkt.Payload, units)
		case isTimeout(err):
			units = jb.Flush(units)
		default:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: audio track: %w", ErrPeerGone, err)
		}
		for _, u := range units {
			if err := p.Push(ctx, &frame.InputAudio{Format: format, Samples: dec.decode(u)}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// WriteAudio implements transport.AudioWriter: it encodes one chunk of at
// most 20 ms as an Opus packet and sends it. It is called on the playout
// goroutine only. After a pause (the playout ran dry) the RTP timestamp
// jumps by the pause, and the packet carries the marker bit (RFC 3551 §4.1),
// so the peer's jitter buffer sees the silence as silence, not as delay.
func (c *conn) WriteAudio(pcm []int16) error {
	now := time.Now()
	marker := false
	if c.tsWall.IsZero() {
		c.tsWall, marker = now, true
	} else if gap := now.Sub(c.tsWall); gap > 0 {
		c.ts += uint32(gap * opusRate / time.Second)
		c.tsWall = now
		marker = gap > 2*time.Duration(frameSamples)*time.Second/opusRate
	}
	payload, err := c.enc.encode(pcm)
	if err != nil {
		return err
	}
	pkt := &rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: marker, PayloadType: uint8(opusCodec.PayloadType),
			SequenceNumber: c.seq, Timestamp: c.ts,
		},
		Payload: payload,
	}
	c.seq++
	c.ts += frameSamples
	c.tsWall = c.tsWall.Add(20 * time.Millisecond)
	if err := c.out.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("webrtc: write audio: %w", err)
	}
	return nil
}

// observer turns each new frame into an event.
type observer struct{ c *conn }

func (o observer) OnHop(h pipeline.Hop) {
	if h.First {
		o.c.notify(h.Frame)
	}
}

func (c *conn) notify(f frame.Frame) {
	ev, ok := events.For(f)
	if !ok {
		return
	}
	if in, ok := events.Interrupted(f); ok {
		c.sendEvent(in, true)
	}
	c.sendEvent(ev, !events.Optional(ev))
}

func (c *conn) sendEvent(ev events.Event, must bool) {
	ev.TMs = time.Since(c.start).Milliseconds()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	c.outMu.Lock()
	select {
	case <-c.closed:
		c.outMu.Unlock()
		return
	default:
	}
	select {
	case c.evq <- b:
		c.outMu.Unlock()
	default:
		c.outMu.Unlock()
		if must {
			c.close(ErrSlowClient)
		}
	}
}

// errorCode gives the protocol's error code for err, "" for none (the peer
// is gone, or the end was normal).
func errorCode(err error) string {
	var pe *protocolError
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, ErrPeerGone):
		return ""
	case errors.As(err, &pe):
		return pe.code
	case errors.Is(err, errShutdown):
		return "shutting_down"
	case errors.Is(err, ErrSlowClient):
		return "slow_client"
	case errors.Is(err, ErrIdle):
		return "idle"
	}
	return "internal"
}

// close ends the session: err nil is a normal end; otherwise an error event
// is queued (unless the peer is gone). The writer then flushes the events
// and closes the peer connection. Idempotent; safe from any goroutine.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.outMu.Lock()
		defer c.outMu.Unlock()
		c.closeErr = err
		if code := errorCode(err); code != "" {
			b, _ := json.Marshal(events.Event{Type: "error", Code: code, Message: err.Error(), TMs: time.Since(c.start).Milliseconds()})
			select {
			case c.evq <- b:
			default:
			}
		}
		close(c.closed)
	})
}

// closeWait bounds how long a closed session waits for its last events to
// leave before the peer connection is closed.
const closeWait = time.Second

// maxBuffered is how many bytes of events may wait in the data channel
// before the peer counts as too slow.
const maxBuffered = 1 << 20

// writer is the only sender on the events channel. It waits for the channel
// to open, sends events in order, and after close flushes them and closes
// the peer connection.
func (c *conn) writer() {
	defer close(c.wdone)
	defer c.pc.Close()
	select {
	case <-c.dcOpen:
	case <-c.closed:
		select {
		case <-c.dcOpen:
		default:
			return // never opened: nothing to flush
		}
	}
	c.dcMu.Lock()
	dc := c.dc
	c.dcMu.Unlock()
	send := func(b []byte) bool {
		if err := dc.SendText(string(b)); err != nil {
			return false
		}
		if dc.BufferedAmount() > maxBuffered {
			c.close(ErrSlowClient)
		}
		return true
	}
	for {
		select {
		case b := <-c.evq:
			if !send(b) {
				c.close(fmt.Errorf("%w: send event", ErrPeerGone))
			}
			continue
		case <-c.closed:
		}
		break
	}
	for {
		select {
		case b := <-c.evq:
			if send(b) {
				continue
			}
		default:
		}
		break
	}
	deadline := time.Now().Add(closeWait)
	for dc.BufferedAmount() > 0 && time.Now().Before(deadline) && dc.ReadyState() == pion.DataChannelStateOpen {
		time.Sleep(10 * time.Millisecond)
	}
}
