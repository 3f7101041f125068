package webrtc

import (
	"fmt"

	"gopkg.in/hraban/opus.v2"
)

// Opus on the wire (RFC 7587): 48 kHz, mono here in both directions, 20 ms
// frames out.
const (
	opusRate     = 48000
	frameSamples = opusRate / 50         // 20 ms
	maxFrame     = opusRate * 120 / 1000 // the longest Opus packet, 120 ms
	// maxConcealed bounds the concealed frames in a row; after that a gap
	// is filled with silence (Opus PLC fades out by then anyway).
	maxConcealed = 5
)

// decoder turns jitter units into 48 kHz mono PCM, concealing lost
// packets with in-band FEC from the next packet when it is held, and with
// Opus packet-loss concealment otherwise. Not safe for concurrent use.
type decoder struct {
	dec       *opus.Decoder
	buf       []int16
	last      int // samples in the last frame decoded (the size of a concealed one)
	concealed int // lost frames in a row
	// Stats.
	FEC, PLC, Corrupt int
}

func newDecoder() (*decoder, error) {
	dec, err := opus.NewDecoder(opusRate, 1)
	if err != nil {
		return nil, fmt.Errorf("webrtc: opus decoder: %w", err)
	}
	return &decoder{dec: dec, buf: make([]int16, maxFrame), last: frameSamples}, nil
}

// decode returns the unit's audio in a new slice (the pipeline keeps it). A
// payload libopus rejects is concealed like a lost packet.
func (d *decoder) decode(u Unit) []int16 {
	if u.Payload != nil {
		n, err := d.dec.Decode(u.Payload, d.buf)
		if err == nil && n > 0 {
			d.last, d.concealed = n, 0
			return append([]int16(nil), d.buf[:n]...)
		}
		d.Corrupt++
	}
	pcm := make([]int16, d.last)
	d.concealed++
	if d.concealed > maxConcealed {
		return pcm // silence
	}
	if u.Next != nil && d.dec.DecodeFEC(u.Next, pcm) == nil {
		d.FEC++
		return pcm
	}
	if d.dec.DecodePLC(pcm) == nil {
		d.PLC++
	}
	return pcm
}

// encoder encodes 20 ms frames of 48 kHz mono PCM. Not safe for concurrent
// use.
type encoder struct {
	enc   *opus.Encoder
	frame []int16
	out   []byte
}

func newEncoder() (*encoder, error) {
	enc, err := opus.NewEncoder(opusRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("webrtc: opus encoder: %w", err)
	}
	return &encoder{enc: enc, frame: make([]int16, frameSamples), out: make([]byte, 1500)}, nil
}

// encode encodes up to 20 ms of pcm (a shorter chunk is padded with
// silence) and returns the packet, valid until the next call.
func (e *encoder) encode(pcm []int16) ([]byte, error) {
	if len(pcm) > frameSamples {
		return nil, fmt.Errorf("webrtc: encode %d samples, more than one 20 ms frame", len(pcm))
	}
	n := copy(e.frame, pcm)
	clear(e.frame[n:])
	m, err := e.enc.Encode(e.frame, e.out)
	if err != nil {
		return nil, fmt.Errorf("webrtc: opus encode: %w", err)
	}
	return e.out[:m], nil
}
