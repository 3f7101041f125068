// Package rtpaudio is the receive path for audio over RTP (RFC 3550) that
// every RTP edge shares — WebRTC, LiveKit, and any edge with its own codec
// (G.711, G.722 for SIP): packets are put back in order by a Jitter
// buffer, decoded by the edge's Decoder, and lost packets are concealed
// (from the next packet's forward error correction when the codec has it,
// with the codec's packet-loss concealment otherwise, with silence after
// MaxConcealed lost packets in a row).
//
//	src := rtpaudio.TrackSource(track)            // or any Source
//	rx := rtpaudio.NewReceiver(dec, rtpaudio.Config{})
//	err := rx.Run(ctx, src, func(pcm []int16) error { ... })
//
// A Receiver is not safe for concurrent use: one goroutine reads one
// stream.
package rtpaudio

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"

	"github.com/voiced-dev/voiced/frame"
)

// Decoder turns one codec's RTP payloads into PCM. Not safe for
// concurrent use. The Receiver calls it for each packet in sequence order,
// and Conceal for each lost one.
type Decoder interface {
	// Format is the format of the PCM the decoder produces.
	Format() frame.Format
	// Decode appends payload's audio to pcm and returns it. It does not
	// retain payload. An error means the payload is corrupt; the Receiver
	// then conceals it like a lost packet.
	Decode(pcm []int16, payload []byte) ([]int16, error)
	// Conceal appends audio standing in for one lost packet (the codec's
	// packet-loss concealment, or silence for a codec without one) of the
	// length of the last packet decoded.
	Conceal(pcm []int16) ([]int16, error)
}

// FECDecoder is a Decoder whose packets can carry the previous packet
// again (Opus in-band FEC, RFC 6716 §2.1.7). The Receiver checks for it
// with a type assertion.
type FECDecoder interface {
	Decoder
	// DecodeFEC appends the audio of the packet lost just before next,
	// rebuilt from next's payload, and returns it. It does not retain
	// next.
	DecodeFEC(pcm []int16, next []byte) ([]int16, error)
}

// Source yields the RTP packets of one stream.
type Source interface {
	// ReadPacket returns the next packet. When none arrives by deadline
	// it returns an error that is a net.Error whose Timeout() is true;
	// any other error ends the stream.
	ReadPacket(deadline time.Time) (*rtp.Packet, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(deadline time.Time) (*rtp.Packet, error)

// ReadPacket calls f.
func (f SourceFunc) ReadPacket(deadline time.Time) (*rtp.Packet, error) { return f(deadline) }

// Track is a remote media track of pion/webrtc (*webrtc.TrackRemote).
type Track interface {
	SetReadDeadline(t time.Time) error
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
}

// TrackSource reads a pion/webrtc remote track.
func TrackSource(t Track) Source {
	return SourceFunc(func(deadline time.Time) (*rtp.Packet, error) {
		if err := t.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		p, _, err := t.ReadRTP()
		return p, err
	})
}

// Defaults of a Config.
const (
	DefaultMaxConcealed = 5
	DefaultGapTimeout   = 60 * time.Millisecond
)

// Config configures a Receiver. The zero value works.
type Config struct {
	// Delay is how many packets a gap in the sequence is waited on before
	// it is concealed (default DefaultJitterDelay).
	Delay int
	// MaxGap is the jump in sequence numbers taken as a new stream
	// (default DefaultMaxGap).
	MaxGap int
	// MaxConcealed bounds the lost packets concealed in a row; after that
	// a gap is filled with silence (concealment has faded out by then
	// anyway). Default DefaultMaxConcealed.
	MaxConcealed int
	// GapTimeout is how long Run waits for a packet before it releases a
	// gap held in the jitter buffer (default DefaultGapTimeout).
	GapTimeout time.Duration
}

// Stats counts what happened to a stream.
type Stats struct {
	Late, Duplicates, Lost, Resets int // from the jitter buffer
	FEC, PLC, Corrupt              int // lost packets rebuilt by FEC or concealed; undecodable payloads
}

// Receiver turns a stream of RTP packets into PCM: it reorders packets,
// decodes them and conceals the lost ones. Not safe for concurrent use.
type Receiver struct {
	cfg       Config
	jb        *Jitter
	dec       Decoder
	fec       FECDecoder // dec, when it can decode FEC
	last      int        // samples of the last unit: the size of silence
	concealed int        // lost units in a row
	units     []Unit
	fecN      int
	plcN      int
	corrupt   int
}

// NewReceiver returns a receiver decoding with dec.
func NewReceiver(dec Decoder, cfg Config) *Receiver {
	if cfg.MaxConcealed <= 0 {
		cfg.MaxConcealed = DefaultMaxConcealed
	}
	if cfg.GapTimeout <= 0 {
		cfg.GapTimeout = DefaultGapTimeout
	}
	r := &Receiver{cfg: cfg, jb: NewJitter(cfg.Delay, cfg.MaxGap), dec: dec}
	r.fec, _ = dec.(FECDecoder)
	r.last = dec.Format().Samples(20 * time.Millisecond)
	return r
}

// Stats returns the stream's counts so far.
func (r *Receiver) Stats() Stats {
	return Stats{
		Late: r.jb.Late, Duplicates: r.jb.Duplicates, Lost: r.jb.Lost, Resets: r.jb.Resets,
		FEC: r.fecN, PLC: r.plcN, Corrupt: r.corrupt,
	}
}

// Push adds a packet and appends the audio of every unit that is ready, in
// order, to out: each chunk is a new slice the caller owns. It keeps
// payload until it is decoded (the caller must not modify it).
func (r *Receiver) Push(seq uint16, payload []byte, out [][]int16) [][]int16 {
	r.units = r.jb.Push(seq, payload, r.units[:0])
	return r.decode(out)
}

// Flush conceals the gap held, if any, and appends the audio of every
// packet held to out.
func (r *Receiver) Flush(out [][]int16) [][]int16 {
	r.units = r.jb.Flush(r.units[:0])
	return r.decode(out)
}

func (r *Receiver) decode(out [][]int16) [][]int16 {
	for _, u := range r.units {
		out = append(out, r.unit(u))
	}
	clear(r.units) // do not keep payloads
	return out
}

// unit decodes one unit into a new slice. A payload the decoder rejects is
// concealed like a lost packet.
func (r *Receiver) unit(u Unit) []int16 {
	if u.Payload != nil {
		pcm, err := r.dec.Decode(nil, u.Payload)
		if err == nil && len(pcm) > 0 {
			r.last, r.concealed = len(pcm), 0
			return pcm
		}
		r.corrupt++
	}
	r.concealed++
	if r.concealed > r.cfg.MaxConcealed {
		return make([]int16, r.last) // silence
	}
	if u.Next != nil && r.fec != nil {
		if pcm, err := r.fec.DecodeFEC(nil, u.Next); err == nil && len(pcm) > 0 {
			r.fecN++
			return pcm
		}
	}
	if pcm, err := r.dec.Conceal(nil); err == nil && len(pcm) > 0 {
		r.plcN++
		return pcm
	}
	return make([]int16, r.last)
}

// Run reads src until ctx ends (it returns nil) or src fails (it returns
// the error), and calls emit with each chunk of audio in order; emit owns
// the chunk. When no packet comes for GapTimeout, a gap held in the jitter
// buffer is released. An error from emit ends Run with that error, unless
// ctx has ended.
func (r *Receiver) Run(ctx context.Context, src Source, emit func(pcm []int16) error) error {
	var chunks [][]int16
	for ctx.Err() == nil {
		pkt, err := src.ReadPacket(time.Now().Add(r.cfg.GapTimeout))
		chunks = chunks[:0]
		switch {
		case err == nil:
			chunks = r.Push(pkt.SequenceNumber, pkt.Payload, chunks)
		case isTimeout(err):
			chunks = r.Flush(chunks)
		default:
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for i, pcm := range chunks {
			chunks[i] = nil
			if err := emit(pcm); err != nil {
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
