// Package opus encodes and decodes Opus (RFC 6716) audio with libopus, as
// RTP carries it (RFC 7587): 48 kHz, mono here in both directions, 20 ms
// frames out. The Decoder conceals lost packets (packet-loss concealment,
// and in-band FEC from the next packet), so it plugs into
// transport/rtpaudio as an rtpaudio.FECDecoder.
//
// It is a package of its own, not part of audio, because it needs cgo and
// libopus: programs that do not speak Opus do not link it.
package opus

import (
	"errors"
	"fmt"

	libopus "gopkg.in/hraban/opus.v2"

	"github.com/voiced-dev/voiced/frame"
)

// Opus on the wire.
const (
	Rate         = 48000
	FrameSamples = Rate / 50         // 20 ms
	MaxSamples   = Rate * 120 / 1000 // the longest Opus packet, 120 ms
	// MaxPacket bounds the size of an encoded packet.
	MaxPacket = 1500
)

// Format is the PCM format of the encoder's input and decoder's output.
var Format = frame.Format{SampleRate: Rate, Channels: 1}

// ErrFrameTooLong is returned by Encode for more than one 20 ms frame.
var ErrFrameTooLong = errors.New("opus: more than one 20 ms frame")

// Encoder encodes 20 ms frames of 48 kHz mono PCM for speech
// (OPUS_APPLICATION_VOIP). Not safe for concurrent use.
type Encoder struct {
	enc   *libopus.Encoder
	frame []int16
	out   []byte
}

// NewEncoder returns an encoder.
func NewEncoder() (*Encoder, error) {
	enc, err := libopus.NewEncoder(Rate, 1, libopus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus: encoder: %w", err)
	}
	return &Encoder{enc: enc, frame: make([]int16, FrameSamples), out: make([]byte, MaxPacket)}, nil
}

// SetInBandFEC makes the encoder add redundancy with which a decoder can
// rebuild a lost packet from the next one; lossPercent is the expected
// packet loss (0–100) that tunes it.
func (e *Encoder) SetInBandFEC(on bool, lossPercent int) error {
	if err := e.enc.SetInBandFEC(on); err != nil {
		return fmt.Errorf("opus: in-band FEC: %w", err)
	}
	if err := e.enc.SetPacketLossPerc(lossPercent); err != nil {
		return fmt.Errorf("opus: packet loss: %w", err)
	}
	return nil
}

// Encode encodes up to 20 ms of pcm (a shorter chunk is padded with
// silence) and returns the packet, valid until the next call. It does not
// retain pcm.
func (e *Encoder) Encode(pcm []int16) ([]byte, error) {
	if len(pcm) > FrameSamples {
		return nil, fmt.Errorf("%w: %d samples", ErrFrameTooLong, len(pcm))
	}
	n := copy(e.frame, pcm)
	clear(e.frame[n:])
	m, err := e.enc.Encode(e.frame, e.out)
	if err != nil {
		return nil, fmt.Errorf("opus: encode: %w", err)
	}
	return e.out[:m], nil
}

// Decoder decodes Opus packets to 48 kHz mono PCM (a stereo stream is
// mixed down by libopus). Not safe for concurrent use.
type Decoder struct {
	dec  *libopus.Decoder
	buf  []int16
	last int // samples in the last frame decoded: the size of a concealed one
}

// NewDecoder returns a decoder.
func NewDecoder() (*Decoder, error) {
	dec, err := libopus.NewDecoder(Rate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus: decoder: %w", err)
	}
	return &Decoder{dec: dec, buf: make([]int16, MaxSamples), last: FrameSamples}, nil
}

// Format implements rtpaudio.Decoder.
func (d *Decoder) Format() frame.Format { return Format }

// Decode implements rtpaudio.Decoder: it appends payload's audio to pcm.
func (d *Decoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	n, err := d.dec.Decode(payload, d.buf)
	if err != nil {
		return pcm, fmt.Errorf("opus: decode: %w", err)
	}
	if n <= 0 {
		return pcm, errors.New("opus: decode: no samples")
	}
	d.last = n
	return append(pcm, d.buf[:n]...), nil
}

// Conceal implements rtpaudio.Decoder: it appends one frame (the size of
// the last one decoded) of Opus packet-loss concealment.
func (d *Decoder) Conceal(pcm []int16) ([]int16, error) {
	out := d.buf[:d.last]
	if err := d.dec.DecodePLC(out); err != nil {
		return pcm, fmt.Errorf("opus: conceal: %w", err)
	}
	return append(pcm, out...), nil
}

// DecodeFEC implements rtpaudio.FECDecoder: it appends the lost frame
// before next, rebuilt from next's in-band FEC data.
func (d *Decoder) DecodeFEC(pcm []int16, next []byte) ([]int16, error) {
	out := d.buf[:d.last]
	if err := d.dec.DecodeFEC(next, out); err != nil {
		return pcm, fmt.Errorf("opus: FEC: %w", err)
	}
	return append(pcm, out...), nil
}
