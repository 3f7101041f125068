package livekit

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/voiced-dev/voiced/audio/opus"
)

// encoder turns 20 ms PCM frames into Opus packets on a local track.
// It is used by one goroutine at a time (the playout's).
type encoder struct {
	enc   *opus.Encoder
	track *localTrack
}

func newEncoder(t *localTrack) (*encoder, error) {
	enc, err := opus.NewEncoder()
	if err != nil {
		return nil, fmt.Errorf("livekit: %w", err)
	}
	return &encoder{enc: enc, track: t}, nil
}

// write encodes pcm (a shorter frame than 20 ms is padded with silence)
// and sends it, 20 ms per sample. It does not retain pcm.
func (e *encoder) write(pcm []int16) error {
	for len(pcm) > 0 {
		n := min(len(pcm), opus.FrameSamples)
		pkt, err := e.enc.Encode(pcm[:n])
		if err != nil {
			return fmt.Errorf("livekit: %w", err)
		}
		pcm = pcm[n:]
		if err := e.track.WriteSample(media.Sample{Data: pkt, Duration: 20 * time.Millisecond}); err != nil {
			return fmt.Errorf("livekit: write sample: %w", err)
		}
	}
	return nil
}

// localTrack is an Opus sample track that reports when it is bound to a
// peer connection: samples written before that are dropped by WebRTC.
type localTrack struct {
	*webrtc.TrackLocalStaticSample
	bound chan struct{} // closed on the first Bind
	once  sync.Once
}

func newLocalTrack(id string) (*localTrack, error) {
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: opus.Rate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}, id, "voiced")
	if err != nil {
		return nil, fmt.Errorf("livekit: track: %w", err)
	}
	return &localTrack{TrackLocalStaticSample: t, bound: make(chan struct{})}, nil
}

// Bind implements webrtc.TrackLocal.
func (t *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticSample.Bind(ctx)
	if err == nil {
		t.once.Do(func() { close(t.bound) })
	}
	return c, err
}
