package livekit

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"gopkg.in/hraban/opus.v2"
)

// Opus in WebRTC runs at 48 kHz; voiced sends and receives mono.
const (
	opusRate    = 48000
	frameDur    = 20 * time.Millisecond
	frameLen    = opusRate / 50 // samples in a 20 ms frame
	maxFrameLen = opusRate * 120 / 1000
	maxPacket   = 4000
	// maxConceal bounds how many lost packets are concealed at once; a
	// longer gap is a pause in sending, not loss.
	maxConceal = 5
)

// encoder turns 20 ms PCM frames into Opus packets on a local track.
// It is used by one goroutine at a time (the playout's).
type encoder struct {
	enc   *opus.Encoder
	track *localTrack
	frame []int16
	pkt   []byte
}

func newEncoder(t *localTrack) (*encoder, error) {
	enc, err := opus.NewEncoder(opusRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("livekit: opus encoder: %w", err)
	}
	return &encoder{enc: enc, track: t, frame: make([]int16, frameLen), pkt: make([]byte, maxPacket)}, nil
}

// write encodes pcm (at most one 20 ms frame; a shorter one is padded with
// silence) and sends it. It does not retain pcm.
func (e *encoder) write(pcm []int16) error {
	for len(pcm) > 0 {
		n := copy(e.frame, pcm)
		clear(e.frame[n:])
		pcm = pcm[n:]
		size, err := e.enc.Encode(e.frame, e.pkt)
		if err != nil {
			return fmt.Errorf("livekit: opus encode: %w", err)
		}
		if err := e.track.WriteSample(media.Sample{Data: e.pkt[:size], Duration: frameDur}); err != nil {
			return fmt.Errorf("livekit: write sample: %w", err)
		}
	}
	return nil
}

// decoder turns the RTP packets of a remote Opus track into mono 48 kHz
// PCM, concealing short gaps in the sequence numbers. It is used by one
// goroutine.
type decoder struct {
	dec     *opus.Decoder
	pcm     []int16
	lastSeq uint16
	started bool
}

func newDecoder() (*decoder, error) {
	dec, err := opus.NewDecoder(opusRate, 1)
	if err != nil {
		return nil, fmt.Errorf("livekit: opus decoder: %w", err)
	}
	return &decoder{dec: dec, pcm: make([]int16, maxFrameLen)}, nil
}

// decode calls emit with the PCM of p, preceded by concealment of packets
// lost just before it. emit must not retain pcm. A packet that is late or
// repeated is dropped.
func (d *decoder) decode(p *rtp.Packet, emit func(pcm []int16)) error {
	if d.started {
		gap := p.SequenceNumber - d.lastSeq // wraps correctly
		if gap == 0 || gap > 1<<15 {
			return nil // repeated or late
		}
		if lost := int(gap) - 1; lost > 0 && lost <= maxConceal {
			for range lost {
				if err := d.dec.DecodePLC(d.pcm[:frameLen]); err != nil {
					return fmt.Errorf("livekit: opus conceal: %w", err)
				}
				emit(d.pcm[:frameLen])
			}
		}
	}
	d.started, d.lastSeq = true, p.SequenceNumber
	if len(p.Payload) == 0 {
		return nil
	}
	n, err := d.dec.Decode(p.Payload, d.pcm)
	if err != nil {
		return fmt.Errorf("livekit: opus decode: %w", err)
	}
	emit(d.pcm[:n])
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
		MimeType: webrtc.MimeTypeOpus, ClockRate: opusRate, Channels: 2,
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
