package livekit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/events"
)

// Queue sizes: a second of audio from the track reader, and events waiting
// for the data channel.
const (
	audioQueue = 50
	eventQueue = 256
	msgQueue   = 16
)

// conn is one conversation in a room: a user's audio and messages in, the
// agent's track and events out.
type conn struct {
	r        *room
	id       string
	identity string // the user's
	log      *slog.Logger
	start    time.Time

	audio chan []int16 // 48 kHz mono from the track reader; never closed
	msgs  chan message

	leftOnce sync.Once
	leftc    chan struct{}

	// outMu makes close and enqueue exclusive, so that nothing is queued
	// after the error event that close queues.
	outMu     sync.Mutex
	events    chan []byte
	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error

	enc     *encoder // set before the pipeline starts
	encErrs int
	dropped atomic.Int64 // audio chunks dropped for a slow pipeline
}

func newConn(r *room, identity string, log *slog.Logger) *conn {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return &conn{
		r: r, id: id, identity: identity, start: time.Now(),
		log:    log.With("session", id, "participant", identity),
		audio:  make(chan []int16, audioQueue),
		msgs:   make(chan message, msgQueue),
		leftc:  make(chan struct{}),
		events: make(chan []byte, eventQueue),
		closed: make(chan struct{}),
	}
}

// serve publishes the agent's track, runs the conversation and unpublishes
// the track. It returns when the conversation is over.
func (c *conn) serve(ctx context.Context) {
	var sent sync.WaitGroup
	sent.Go(c.sender)
	defer func() {
		c.close(nil)
		sent.Wait()
	}()

	lp := c.r.lk.LocalParticipant
	name := "voiced"
	if c.r.a.cfg.Mode == PerParticipant {
		name = "voiced-" + c.identity
	}
	track, err := newLocalTrack("voiced-" + c.id)
	if err != nil {
		c.close(err)
		return
	}
	if c.enc, err = newEncoder(track); err != nil {
		c.close(err)
		return
	}
	pub, err := lp.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: name, Source: livekit.TrackSource_MICROPHONE})
	if err != nil {
		c.close(fmt.Errorf("livekit: publish track: %w", err))
		return
	}
	defer lp.UnpublishTrack(pub.SID())
	// Samples written before the track is bound are dropped: wait.
	bt := time.NewTimer(c.r.a.cfg.BindTimeout)
	defer bt.Stop()
	select {
	case <-track.bound:
	case <-bt.C:
		c.close(ErrNotBound)
		return
	case <-ctx.Done():
		return
	}

	cfg := c.r.a.cfg
	in, err := transport.NewInput(Format, cfg.PipelineFormat)
	if err != nil {
		c.close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: Format})
	s := &transport.Session{
		ID: c.id, In: Format, Out: Format,
		Input: in, Output: play,
		Observer: observer{c},
		Feed:     c.feed,
		Notify:   c.notify,
		Close:    c.close,
	}
	c.log.Info("session started")
	err = c.r.a.run(ctx, s)
	c.close(err)
	switch {
	case err == nil, errors.Is(err, ErrParticipantLeft), errors.Is(err, context.Canceled):
		c.log.Info("session ended", "err", err)
	default:
		c.log.Warn("session failed", "err", err)
	}
}

// readTrack decodes the user's track into c.audio until the track ends or
// ctx does. It never blocks on the pipeline: audio is dropped when it lags
// a second behind.
func (c *conn) readTrack(ctx context.Context, t *webrtc.TrackRemote) {
	dec, err := newDecoder()
	if err != nil {
		c.log.Error("track", "err", err)
		return
	}
	emit := func(pcm []int16) {
		select {
		case c.audio <- append([]int16(nil), pcm...):
		default:
			if n := c.dropped.Add(1); n == 1 || n%50 == 0 {
				c.log.Warn("pipeline lags: dropping user audio", "dropped_chunks", n)
			}
		}
	}
	for ctx.Err() == nil {
		p, _, err := t.ReadRTP()
		if err != nil {
			return // the track was unsubscribed or the connection closed
		}
		if err := dec.decode(p, emit); err != nil {
			c.log.Debug("undecodable packet", "err", err)
		}
	}
}

// message hands a participant's message to Feed, dropping it when Feed is
// sixteen messages behind.
func (c *conn) message(m message) {
	select {
	case c.msgs <- m:
	default:
		c.sendEvent(event{Type: "error", Code: "slow", Message: "too many messages"}, true)
	}
}

// left makes Feed return ErrParticipantLeft.
func (c *conn) left() { c.leftOnce.Do(func() { close(c.leftc) }) }

// feed implements transport.Session.Feed.
func (c *conn) feed(ctx context.Context, p *pipeline.Pipeline) error {
	c.sendEvent(event{Type: "ready", Turn: p.Turn(), SessionID: c.id, SampleRate: Format.SampleRate, OutputSampleRate: Format.SampleRate}, true)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.closed:
			if c.closeErr != nil {
				return c.closeErr
			}
			return ErrRoomClosed
		case <-c.leftc:
			return ErrParticipantLeft
		case pcm := <-c.audio:
			if err := p.Push(ctx, &frame.InputAudio{Format: Format, Samples: pcm}); err != nil {
				return err
			}
		case m := <-c.msgs:
			switch m.Type {
			case "end":
				return p.Push(ctx, &frame.End{Reason: "participant ended"})
			case "text":
				text := strings.TrimSpace(m.Text)
				if text == "" {
					continue
				}
				// Typed input interrupts the bot like speech does.
				p.Interrupt("user typed")
				if err := p.Push(ctx, &frame.Interruption{Reason: "user typed"}); err != nil {
					return err
				}
				if err := p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true}); err != nil {
					return err
				}
			}
		}
	}
}

// WriteAudio implements transport.AudioWriter: it encodes pcm to Opus and
// writes it to the agent's track.
func (c *conn) WriteAudio(pcm []int16) error {
	if err := c.enc.write(pcm); err != nil {
		c.encErrs++
		if c.encErrs == 1 {
			c.log.Warn("audio out", "err", err)
		}
		return err
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
	ev, ok := eventFor(f)
	if !ok {
		return
	}
	if iv, ok := events.Interrupted(f); ok {
		c.sendEvent(iv, true)
	}
	c.sendEvent(ev, !events.Optional(ev))
}

// sendEvent queues ev for the sender. When the data channel cannot keep up
// an optional event is dropped, and a required one is dropped with a
// warning: a room's data channel is shared, so a slow one does not end the
// conversation.
func (c *conn) sendEvent(ev event, must bool) {
	ev.TMs = time.Since(c.start).Milliseconds()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	select {
	case c.events <- b:
	default:
		if must {
			c.log.Warn("data channel lags: event dropped", "type", ev.Type)
		}
	}
}

// sender publishes queued events until the conversation is closed and its
// queue is drained.
func (c *conn) sender() {
	opts := []lksdk.DataPublishOption{lksdk.WithDataPublishReliable(true)}
	if c.r.a.cfg.Mode == PerParticipant {
		opts = append(opts, lksdk.WithDataPublishDestination([]string{c.identity}))
	}
	lp := c.r.lk.LocalParticipant
	send := func(b []byte) {
		if err := lp.PublishDataPacket(&lksdk.UserDataPacket{Payload: b, Topic: Topic}, opts...); err != nil {
			c.log.Debug("data packet", "err", err)
		}
	}
	for {
		select {
		case b := <-c.events:
			send(b)
		case <-c.closed:
			for {
				select {
				case b := <-c.events:
					send(b)
				default:
					return
				}
			}
		}
	}
}

// close ends the conversation: err nil is a normal end; otherwise the
// participant is sent an error event (unless it left). Idempotent.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.outMu.Lock()
		defer c.outMu.Unlock()
		c.closeErr = err
		if err != nil && !errors.Is(err, ErrParticipantLeft) && !errors.Is(err, context.Canceled) {
			b, _ := json.Marshal(event{Type: "error", Code: errorCode(err), Message: err.Error(), TMs: time.Since(c.start).Milliseconds()})
			select {
			case c.events <- b:
			default:
			}
		}
		close(c.closed)
	})
}

func errorCode(err error) string {
	switch {
	case errors.Is(err, transport.ErrShuttingDown):
		return "shutting_down"
	case errors.Is(err, ErrRoomClosed):
		return "room_closed"
	}
	return "internal"
}
