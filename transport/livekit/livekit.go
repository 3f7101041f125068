// Package livekit is the LiveKit transport: voiced joins a LiveKit room as
// an agent participant, hears a user's microphone track (Opus, decoded to
// 48 kHz mono), answers on its own audio track (Opus, paced by
// transport.Playout) and exchanges JSON messages with the room's
// participants as data packets on Topic: the same events as the WebSocket
// protocol (docs/protocol.md) from the agent, and {"type":"text"} /
// {"type":"end"} from participants.
//
// An Agent joins one room with a token (Join); a Worker registers with a
// LiveKit server as an agent worker and joins the rooms the server
// dispatches to it (https://docs.livekit.io/agents/worker/).
//
// It is an edge on the transport core (transport.Conn: events and the
// slow-client policy; transport.Admission: the server's session limit) and
// receives audio through transport/rtpaudio (jitter buffer, Opus FEC and
// concealment) with the audio/opus codec, like transport/webrtc.
//
// Wire formats: Opus over RTP (RFC 7587) as negotiated by LiveKit; data
// packets are livekit.UserPacket with topic Topic, sent reliably.
package livekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// Topic is the data-packet topic of voiced's messages, both ways.
const Topic = "voiced.events"

// Kind is the Session.Kind of LiveKit sessions.
const Kind = "livekit"

// Format is the format of the audio a LiveKit session exchanges with the
// pipeline's transport stages: Opus decodes to it and encodes from it.
var Format = opus.Format

var (
	// ErrJoin wraps every failure to join a room.
	ErrJoin = errors.New("livekit: cannot join room")
	// ErrUnauthorized is a join refused for the token (bad signature,
	// expired, wrong key, no grant for the room). It wraps ErrJoin.
	ErrUnauthorized = fmt.Errorf("%w: token rejected", ErrJoin)
	// ErrUnknownRoom is a join of a room that does not exist on a server
	// that does not create rooms on join. It wraps ErrJoin.
	ErrUnknownRoom = fmt.Errorf("%w: unknown room", ErrJoin)
	// ErrBadMessage wraps every malformed data message from a participant.
	ErrBadMessage = errors.New("livekit: bad data message")
	// ErrParticipantLeft ends the session of a participant who left (no
	// error event: nobody is listening).
	ErrParticipantLeft = fmt.Errorf("livekit: participant left: %w", transport.ErrClientGone)
	// ErrRoomClosed ends sessions whose room connection was lost or
	// closed (error code room_closed).
	ErrRoomClosed error = &transport.CodedError{Code: "room_closed", Err: errors.New("livekit: room connection closed")}
	// ErrNotBound is a published track that the server never bound.
	ErrNotBound = errors.New("livekit: audio track not bound in time")
)

// Mode says how an Agent maps conversations onto a room.
type Mode uint8

const (
	// PerRoom runs one conversation per room, with the first user who
	// publishes audio or sends a message; it ends when that user leaves
	// or ends it, and the agent then leaves the room.
	PerRoom Mode = iota
	// PerParticipant runs one conversation per user participant, each
	// with its own audio track (named "voiced-<identity>") and events
	// sent to that participant only; the agent leaves once every user has
	// left and every conversation has ended.
	PerParticipant
)

// Config configures an Agent. The zero value works.
type Config struct {
	Mode Mode
	// PipelineFormat is the format of the pipeline's audio (default 16 kHz
	// mono).
	PipelineFormat frame.Format
	// JoinTimeout bounds joining the room (default 10 s).
	JoinTimeout time.Duration
	// BindTimeout bounds the wait for the agent's audio track to be bound
	// before a conversation starts (default 10 s).
	BindTimeout time.Duration
	// Admission, if set, admits each conversation (a user refused for the
	// server's session limit is not heard) and ends conversations on its
	// Shutdown. Share the server's, so that its limit holds across edges.
	Admission *transport.Admission
	Logger    *slog.Logger
}

func (c *Config) defaults() {
	if c.PipelineFormat == (frame.Format{}) {
		c.PipelineFormat = frame.Mono16k
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.BindTimeout <= 0 {
		c.BindTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Agent joins LiveKit rooms and runs a conversation for each user, with
// the Factory the program supplies. It is safe for concurrent use: each
// Join is independent.
type Agent struct {
	cfg Config
	run transport.Factory
}

// NewAgent returns an agent running run for each conversation.
func NewAgent(cfg Config, run transport.Factory) *Agent {
	cfg.defaults()
	return &Agent{cfg: cfg, run: run}
}

// Join connects to the room that token grants at url (ws:// or wss://) and
// serves it until the conversations are over (see Mode; a room whose
// users all left without talking is over too), the room
// connection is lost (ErrRoomClosed), or ctx ends (ctx's error; live
// conversations are cut). Every goroutine it starts has ended when it
// returns, and it has left the room. Join errors wrap ErrJoin.
func (a *Agent) Join(ctx context.Context, url, token string) error {
	r := &room{
		a:       a,
		log:     a.cfg.Logger,
		convs:   map[string]*conn{},
		changed: make(chan struct{}, 1),
		lost:    make(chan struct{}),
	}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = r.onTrack
	cb.OnParticipantDisconnected = r.onLeft
	cb.OnDataPacket = r.onData
	cb.OnParticipantConnected = func(p *lksdk.RemoteParticipant) {
		if isUser(p) {
			r.mu.Lock()
			r.seen = true
			r.mu.Unlock()
		}
	}
	cb.OnDisconnected = func() { r.lostOnce.Do(func() { close(r.lost) }) }
	lr := lksdk.NewRoom(cb)
	jctx, cancel := context.WithTimeout(ctx, a.cfg.JoinTimeout)
	// The SDK logs through its own logger; voiced logs what matters.
	err := lr.JoinWithContextAndToken(jctx, url, token, lksdk.WithAutoSubscribe(true), lksdk.WithLogger(protoLogger.GetDiscardLogger()))
	cancel()
	if err != nil {
		return joinError(err)
	}
	r.mu.Lock()
	r.lk = lr
	r.log = a.cfg.Logger.With("room", lr.Name(), "transport", "livekit")
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	pending := r.pending
	r.pending = nil
	for _, p := range lr.GetRemoteParticipants() {
		r.seen = r.seen || isUser(p)
	}
	r.mu.Unlock()
	r.log.Info("joined room", "identity", lr.LocalParticipant.Identity())
	for _, f := range pending {
		f()
	}
	err = r.serve()
	r.cancel(err)
	r.wg.Wait() // conversations
	lr.Disconnect()
	r.readers.Wait() // their tracks end with the connection
	r.log.Info("left room", "err", err)
	return err
}

// jwtRE matches a JWT, which the SDK's errors may quote.
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// joinError classifies a failed join; a token quoted in err is redacted.
func joinError(err error) error {
	if jwtRE.MatchString(err.Error()) {
		err = errors.New(jwtRE.ReplaceAllString(err.Error(), "<token>"))
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "401") || strings.Contains(msg, "unauthorized") || strings.Contains(msg, "permission") ||
		strings.Contains(msg, "token") || strings.Contains(msg, "signature") || strings.Contains(msg, "expired"):
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case strings.Contains(msg, "not found") || strings.Contains(msg, "does not exist") || strings.Contains(msg, "404"):
		// The SDK reports the server's 404 on /rtc/validate as "not found".
		return fmt.Errorf("%w: %w", ErrUnknownRoom, err)
	}
	return fmt.Errorf("%w: %w", ErrJoin, err)
}

// room is one joined room.
type room struct {
	a   *Agent
	log *slog.Logger

	mu      sync.Mutex
	lk      *lksdk.Room
	ctx     context.Context
	cancel  context.CancelCauseFunc
	convs   map[string]*conn // by participant identity ("" in PerRoom mode)
	started int              // conversations started
	seen    bool             // a user has been in the room
	// pending holds callbacks that fired before Join returned.
	pending []func()
	wg      sync.WaitGroup // conversations
	readers sync.WaitGroup // track readers

	changed  chan struct{} // a conversation ended or a user left
	lost     chan struct{}
	lostOnce sync.Once
}

// serve waits until the room is done with.
func (r *room) serve() error {
	for {
		select {
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		case <-r.lost:
			return ErrRoomClosed
		case <-r.changed:
		}
		if r.done() {
			return nil
		}
	}
}

// done reports whether the room's conversations are over.
func (r *room) done() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen && r.started == 0 || len(r.convs) > 0 {
		return false
	}
	if r.a.cfg.Mode == PerRoom && r.started > 0 {
		return true
	}
	for _, p := range r.lk.GetRemoteParticipants() {
		if isUser(p) {
			return false
		}
	}
	return true
}

func (r *room) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func isUser(p *lksdk.RemoteParticipant) bool {
	return p.Kind() != lksdk.ParticipantAgent
}

// later runs f now if the room is joined, or once it is.
func (r *room) later(f func()) bool {
	r.mu.Lock()
	if r.lk == nil {
		r.pending = append(r.pending, f)
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	return true
}

// convFor returns the conversation of participant p, starting one if there
// is none and p may have one. It returns nil if p is not heard.
func (r *room) convFor(p *lksdk.RemoteParticipant) *conn {
	if !isUser(p) {
		return nil
	}
	key := ""
	if r.a.cfg.Mode == PerParticipant {
		key = p.Identity()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return nil
	}
	if c, ok := r.convs[key]; ok {
		if c.identity != p.Identity() {
			return nil // PerRoom: another user has the conversation
		}
		return c
	}
	if r.a.cfg.Mode == PerRoom && r.started > 0 {
		return nil // the room's one conversation is over
	}
	var ticket *transport.Ticket
	if adm := r.a.cfg.Admission; adm != nil {
		t, err := adm.Admit()
		if err != nil {
			r.log.Info("conversation refused", "participant", p.Identity(), "err", err)
			return nil
		}
		ticket = t
	}
	c := newConn(r, p.Identity(), r.a.cfg.Logger.With("room", r.lk.Name())) // the Conn adds the transport
	r.convs[key] = c
	r.started++
	if ticket != nil {
		ticket.Attach(c.Close)
	}
	r.wg.Go(func() {
		if ticket != nil {
			defer ticket.Release()
		}
		c.serve(r.ctx)
		r.mu.Lock()
		delete(r.convs, key)
		r.mu.Unlock()
		r.signal()
	})
	return c
}

func (r *room) onTrack(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
	if track.Kind() != webrtc.RTPCodecTypeAudio || !strings.EqualFold(track.Codec().MimeType, webrtc.MimeTypeOpus) {
		return
	}
	if !r.later(func() { r.onTrack(track, nil, p) }) {
		return
	}
	c := r.convFor(p)
	if c == nil {
		return
	}
	r.readers.Go(func() { c.readTrack(r.ctx, track) })
}

func (r *room) onLeft(p *lksdk.RemoteParticipant) {
	if !r.later(func() { r.onLeft(p) }) {
		return
	}
	r.mu.Lock()
	for _, c := range r.convs {
		if c.identity == p.Identity() {
			c.left()
		}
	}
	r.mu.Unlock()
	r.signal()
}

func (r *room) onData(d lksdk.DataPacket, params lksdk.DataReceiveParams) {
	up, ok := d.(*lksdk.UserDataPacket)
	if !ok || up.Topic != Topic || params.Sender == nil {
		return
	}
	if !r.later(func() { r.onData(d, params) }) {
		return
	}
	c := r.convFor(params.Sender)
	if c == nil {
		return
	}
	m, err := parseMessage(up.Payload)
	if err != nil {
		r.log.Info("bad data message", "from", params.SenderIdentity, "err", err)
		c.Send(transport.Event{Type: "error", Code: "bad_message", Message: err.Error()})
		return
	}
	c.message(m)
}
