package livekit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtpaudio"
)

// Queue sizes: a second of audio from the track reader, and events waiting
// for the data channel.
const (
	audioQueue = 50
	eventQueue = 256
	msgQueue   = 16
)

// conn is one conversation in a room: a user's audio and messages in, the
// agent's track and events out. Its events follow the shared slow-client
// policy (transport.Conn): an event that cannot be queued for the data
// channel ends the conversation with transport.ErrSlowClient, as on every
// edge.
type conn struct {
	*transport.Conn
	r        *room
	identity string // the user's

	audio chan []int16 // 48 kHz mono from the track reader; never closed
	msgs  chan transport.Message

	leftOnce sync.Once
	leftc    chan struct{}

	enc     *encoder // set before the pipeline starts
	encErrs int
	dropped atomic.Int64 // audio chunks dropped for a slow pipeline
}

func newConn(r *room, identity string, log *slog.Logger) *conn {
	return &conn{
		Conn:     transport.NewConn(transport.ConnConfig{Kind: Kind, Queue: eventQueue, Logger: log.With("participant", identity)}),
		r:        r,
		identity: identity,
		audio:    make(chan []int16, audioQueue),
		msgs:     make(chan transport.Message, msgQueue),
		leftc:    make(chan struct{}),
	}
}

// serve publishes the agent's track, runs the conversation and unpublishes
// the track. It returns when the conversation is over.
func (c *conn) serve(ctx context.Context) {
	var sent sync.WaitGroup
	sent.Go(c.sender)
	defer func() {
		c.Close(nil)
		sent.Wait()
	}()

	lp := c.r.lk.LocalParticipant
	name := "voiced"
	if c.r.a.cfg.Mode == PerParticipant {
		name = "voiced-" + c.identity
	}
	track, err := newLocalTrack("voiced-" + c.ID())
	if err != nil {
		c.Close(err)
		return
	}
	if c.enc, err = newEncoder(track); err != nil {
		c.Close(err)
		return
	}
	pub, err := lp.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: name, Source: livekit.TrackSource_MICROPHONE})
	if err != nil {
		c.Close(fmt.Errorf("livekit: publish track: %w", err))
		return
	}
	defer lp.UnpublishTrack(pub.SID())
	// Samples written before the track is bound are dropped: wait.
	bt := time.NewTimer(c.r.a.cfg.BindTimeout)
	defer bt.Stop()
	select {
	case <-track.bound:
	case <-bt.C:
		c.Close(ErrNotBound)
		return
	case <-ctx.Done():
		return
	}

	in, err := transport.NewInput(Format, c.r.a.cfg.PipelineFormat)
	if err != nil {
		c.Close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: Format})
	s := c.Session(Format, Format, in, play, c.feed)
	c.Logger().Info("session started")
	err = c.r.a.run(ctx, s)
	c.Close(err)
	c.LogEnd(err)
}

// readTrack decodes the user's track into c.audio through the shared
// receive path (jitter buffer, Opus with FEC and concealment) until the
// track ends or ctx does. It never blocks on the pipeline: audio is
// dropped when it lags a second behind.
func (c *conn) readTrack(ctx context.Context, t *webrtc.TrackRemote) {
	dec, err := opus.NewDecoder()
	if err != nil {
		c.Logger().Error("track", "err", err)
		return
	}
	rx := rtpaudio.NewReceiver(dec, rtpaudio.Config{})
	err = rx.Run(ctx, rtpaudio.TrackSource(t), func(pcm []int16) error {
		select {
		case c.audio <- pcm:
		default:
			if n := c.dropped.Add(1); n == 1 || n%50 == 0 {
				c.Logger().Warn("pipeline lags: dropping user audio", "dropped_chunks", n)
			}
		}
		return nil
	})
	s := rx.Stats()
	// The track was unsubscribed or the connection closed.
	c.Logger().Debug("audio in", "err", err, "lost", s.Lost, "late", s.Late, "duplicates", s.Duplicates,
		"resets", s.Resets, "fec", s.FEC, "plc", s.PLC, "corrupt", s.Corrupt)
}

// message hands a participant's message to Feed, dropping it when Feed is
// sixteen messages behind.
func (c *conn) message(m transport.Message) {
	select {
	case c.msgs <- m:
	default:
		c.Send(transport.Event{Type: "error", Code: "slow", Message: "too many messages"})
	}
}

// left makes Feed return ErrParticipantLeft.
func (c *conn) left() { c.leftOnce.Do(func() { close(c.leftc) }) }

// feed implements transport.Session.Feed.
func (c *conn) feed(ctx context.Context, p transport.Pusher) error {
	c.Ready(p, Format, Format)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.Done():
			if err := c.Err(); err != nil {
				return err
			}
			return ErrRoomClosed
		case <-c.leftc:
			return ErrParticipantLeft
		case pcm := <-c.audio:
			if err := p.Push(ctx, &frame.InputAudio{Format: Format, Samples: pcm}); err != nil {
				return err
			}
		case m := <-c.msgs:
			if done, err := transport.Deliver(ctx, p, m); done || err != nil {
				return err
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
			c.Logger().Warn("audio out", "err", err)
		}
		return err
	}
	return nil
}

// sender publishes queued events until the conversation is closed and its
// queue is drained.
func (c *conn) sender() {
	opts := []lksdk.DataPublishOption{lksdk.WithDataPublishReliable(true)}
	if c.r.a.cfg.Mode == PerParticipant {
		opts = append(opts, lksdk.WithDataPublishDestination([]string{c.identity}))
	}
	lp := c.r.lk.LocalParticipant
	send := func(m transport.Outgoing) {
		if err := lp.PublishDataPacket(&lksdk.UserDataPacket{Payload: m.Data, Topic: Topic}, opts...); err != nil {
			c.Logger().Debug("data packet", "err", err)
		}
	}
	for {
		select {
		case m := <-c.Outgoing():
			send(m)
		case <-c.Done():
			for {
				select {
				case m := <-c.Outgoing():
					send(m)
				default:
					return
				}
			}
		}
	}
}
