package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtpaudio"
)

// readAudio reads the peer's RTP through the shared receive path (jitter
// buffer, Opus decoding with FEC and concealment) and pushes it until ctx
// ends (nil) or the track ends (ErrPeerGone).
func (c *conn) readAudio(ctx context.Context, p transport.Pusher, tr *pion.TrackRemote) error {
	return readTrack(ctx, p, tr, trackIn{cfg: &c.h.cfg, lastRx: &c.lastRx, log: c.Logger()})
}

// trackIn is what reading a peer's audio track needs from its session.
type trackIn struct {
	cfg    *Config
	lastRx *atomic.Int64 // unix nanoseconds of the last packet, updated
	log    *slog.Logger
	muted  *atomic.Bool // when set and true, the audio is pushed as silence
}

// readTrack is readAudio for any session: see there.
func readTrack(ctx context.Context, p transport.Pusher, tr *pion.TrackRemote, in trackIn) error {
	dec, err := opus.NewDecoder()
	if err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	rx := rtpaudio.NewReceiver(dec, rtpaudio.Config{Delay: in.cfg.JitterDelay})
	defer func() {
		s := rx.Stats()
		in.log.Debug("audio in", "lost", s.Lost, "late", s.Late, "duplicates", s.Duplicates, "resets", s.Resets,
			"fec", s.FEC, "plc", s.PLC, "corrupt", s.Corrupt)
	}()
	src := rtpaudio.TrackSource(tr)
	received := rtpaudio.SourceFunc(func(deadline time.Time) (*rtp.Packet, error) {
		pkt, err := src.ReadPacket(deadline)
		if err == nil {
			in.lastRx.Store(time.Now().UnixNano())
		}
		return pkt, err
	})
	var pushErr error
	pace := transport.Pacer{Burst: in.cfg.InputBurst, MaxAhead: in.cfg.InputMaxAhead}
	err = rx.Run(ctx, received, func(pcm []int16) error {
		// A peer sending faster than real time is held back (its packets
		// wait, or are dropped, in the receive buffers), then cut off.
		wait, err := pace.Add(time.Now(), opus.Format.Duration(len(pcm)))
		if err != nil {
			pushErr = err
			return err
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				pushErr = context.Cause(ctx)
				return pushErr
			}
		}
		if in.muted != nil && in.muted.Load() {
			clear(pcm) // emit owns pcm
		}
		pushErr = p.Push(ctx, &frame.InputAudio{Format: opus.Format, Samples: pcm})
		return pushErr
	})
	switch {
	case err == nil, err == pushErr:
		return err
	}
	return fmt.Errorf("%w: audio track: %w", ErrPeerGone, err)
}

// rtpSender packetizes the bot's voice: Opus-encoded 20 ms frames in RTP
// packets on the output track. It is used on the playout goroutine only.
type rtpSender struct {
	enc    *opus.Encoder
	track  *pion.TrackLocalStaticRTP
	seq    uint16
	ts     uint32
	tsWall time.Time // wall time at which ts is due to play
}

// WriteAudio implements transport.AudioWriter: it encodes one chunk of at
// most 20 ms as an Opus packet and sends it. It is called on the playout
// goroutine only. After a pause (the playout ran dry) the RTP timestamp
// jumps by the pause, and the packet carries the marker bit (RFC 3551 §4.1),
// so the peer's jitter buffer sees the silence as silence, not as delay.
func (c *conn) WriteAudio(pcm []int16) error { return c.sender.write(pcm) }

func (s *rtpSender) write(pcm []int16) error {
	now := time.Now()
	marker := false
	if s.tsWall.IsZero() {
		s.tsWall, marker = now, true
	} else if gap := now.Sub(s.tsWall); gap > 0 {
		s.ts += uint32(gap * opus.Rate / time.Second)
		s.tsWall = now
		marker = gap > 2*time.Duration(opus.FrameSamples)*time.Second/opus.Rate
	}
	payload, err := s.enc.Encode(pcm)
	if err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	pkt := &rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: marker, PayloadType: uint8(opusCodec.PayloadType),
			SequenceNumber: s.seq, Timestamp: s.ts,
		},
		Payload: payload,
	}
	s.seq++
	s.ts += opus.FrameSamples
	s.tsWall = s.tsWall.Add(20 * time.Millisecond)
	if err := s.track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("webrtc: write audio: %w", err)
	}
	return nil
}
