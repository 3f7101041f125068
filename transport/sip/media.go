package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport/rtpaudio"
)

// RTP (RFC 3550) for one call: a UDP socket, a receiver that decodes G.711
// or G.722 and telephone-events, and a sender that puts out exactly one
// packet every 20 ms for as long as the call lasts (silence when the bot is
// quiet).

const (
	ptime      = 20 * time.Millisecond
	maxQueued  = 2 * time.Second
	maxPayload = 1500
	// maxBurst bounds the packets sent on one tick to catch up after the
	// sender was starved; beyond it the lost time is skipped.
	maxBurst = 3
)

var (
	// ErrMediaTimeout ends a call whose peer stopped sending RTP.
	ErrMediaTimeout = errors.New("sip: media timeout")
	// ErrNoPorts means every RTP port of the range is in use.
	ErrNoPorts = errors.New("sip: no free RTP port")
)

// packetConn is the part of a UDP socket the media session uses.
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// media is one call's RTP session. Its methods are safe for concurrent use;
// run and send each run on one goroutine owned by the call.
type media struct {
	conn packetConn
	port int
	log  *slog.Logger

	timeout, firstTimeout time.Duration

	mu    sync.Mutex
	codec codec
	// rate is the call's audio rate, its first codec's: the pipeline's
	// side of the call keeps it when a re-INVITE moves the call to a codec
	// of another rate, and the media resamples between the two.
	rate    int
	pt      uint8 // payload type of codec on this call
	dtmfPT  uint8
	remote  netip.AddrPort // where RTP goes: from SDP, then where it comes from
	allowed []netip.Addr   // sources RTP is accepted from before latching
	latched bool
	sending bool // our direction includes send
	held    bool // the peer holds the call: no media timeout
	queue   []int16
	// tonesOut are keys to send as telephone-events (Control.SendDTMF).
	tonesOut toneQueue

	// audio carries decoded caller audio (mono, at the codec's rate),
	// digits key presses; both drop when full rather than block the
	// socket reader.
	audio  chan []int16
	digits chan byte
	dead   chan struct{} // closed on media timeout
	dying  sync.Once

	// Receiver state, run's goroutine only.
	lastRx   time.Time
	gotFirst bool
	tones    toneDedup
	stats    rtpaudio.Stats // of the audio, once run has returned
	received atomic.Int64   // packets accepted
	dropped  atomic.Int64   // packets dropped: strangers, late, unknown payload, pipeline behind

	// Sender state, send's goroutine only.
	ssrc uint32
	seq  uint16
	ts   uint32
	enc  *audio.G722Encoder // of a G.722 call
	oenc *opus.Encoder      // of an Opus call
	down resampler          // the call's rate to the codec's, when they differ
	// Receiver's decoder state, run's goroutine only.
	dec     *audio.G722Decoder
	odec    *opus.Decoder
	plc     *audio.PLC // at plcRate, the codec's
	plcRate int
	up      resampler // the codec's rate to the call's, when they differ
	dbuf    []int16   // decoded audio at the codec's rate, before up

	// onSend, when set (tests, benchmarks), is told the time of each packet.
	onSend func(time.Time)
}

func newMedia(conn packetConn, port int, log *slog.Logger, timeout, firstTimeout time.Duration) *media {
	var b [8]byte
	rand.Read(b[:])
	return &media{
		conn: conn, port: port, log: log,
		timeout: timeout, firstTimeout: firstTimeout,
		audio:  make(chan []int16, 50),
		digits: make(chan byte, 32),
		dead:   make(chan struct{}),
		ssrc:   binary.BigEndian.Uint32(b[:4]),
		seq:    binary.BigEndian.Uint16(b[4:6]),
		ts:     binary.BigEndian.Uint32(b[:4]) ^ uint32(b[6])<<8 ^ uint32(b[7]),
	}
}

// apply sets the negotiated stream: codec, peer address, directions. A new
// peer address (re-INVITE) is learnt again from the packets. signal is
// the address SIP came from (RTP may come from there behind NAT).
func (m *media) apply(o *offer, dir Direction, signal netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codec, m.pt, m.dtmfPT = o.codec, o.pt, o.dtmfPT
	if m.rate == 0 {
		m.rate = o.codec.audioRate
	}
	if !o.addr.Addr().IsUnspecified() && o.addr != m.remote {
		if !m.latched || o.addr.Addr() != m.remote.Addr() {
			m.remote, m.latched = o.addr, false
		}
	}
	m.allowed = []netip.Addr{o.addr.Addr().Unmap()}
	if signal.IsValid() {
		m.allowed = append(m.allowed, signal.Unmap())
	}
	m.sending = dir.sends()
	m.held = o.hold()
	if m.held {
		m.queue = m.queue[:0]
	}
}

// WriteAudio implements transport.AudioWriter: it queues audio at the
// call's rate for the sender. At most two seconds are kept.
func (m *media) WriteAudio(pcm []int16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue)+len(pcm) > samplesIn(m.rate, maxQueued) {
		return nil // the playout runs ahead of the clock: drop
	}
	m.queue = append(m.queue, pcm...)
	return nil
}

// clear drops queued audio (barge-in).
func (m *media) clear() {
	m.mu.Lock()
	m.queue = m.queue[:0]
	m.mu.Unlock()
}

// send puts out one packet per ptime until ctx ends. The clock never stops:
// with nothing queued it sends encoded silence.
func (m *media) send(ctx context.Context) {
	// The ticker starts after start: tick k comes at start + k×ptime or a
	// little later, and is rounded to the nearest tick, so that a tick on
	// time is never taken for the one before.
	start := time.Now()
	t := time.NewTicker(ptime)
	defer t.Stop()
	var sent int64
	// Room for a packet at the highest rate (Opus, 48 kHz) and its
	// resampled copy.
	pcm := make([]int16, 2*opusCodec.samples())
	payload := make([]byte, 0, maxPayload)
	buf := make([]byte, maxPayload)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int64((now.Sub(start) + ptime/2) / ptime)
			for n := 0; sent < due && n < maxBurst; n++ {
				m.sendOne(pcm, payload, buf, sent == 0, now)
				sent++
			}
			if sent < due { // starved: skip the lost time, keep the timestamps true
				m.mu.Lock()
				step := m.codec.tsStep()
				m.mu.Unlock()
				m.ts += uint32(due-sent) * step
				sent = due
			}
		}
	}
}

func (m *media) sendOne(pcm []int16, payload, buf []byte, first bool, now time.Time) {
	m.mu.Lock()
	c, pt, to, sending, rate := m.codec, m.pt, m.remote, m.sending, m.rate
	chunk := pcm[:samplesIn(rate, ptime)]
	n := copy(chunk, m.queue)
	m.queue = m.queue[:copy(m.queue, m.queue[n:])]
	clear(chunk[n:])
	tone, toneStart, toneTS, isTone := m.nextTone(m.ts)
	dtmfPT := m.dtmfPT
	m.mu.Unlock()
	pcm = chunk
	if rate != c.audioRate {
		// The call's audio at the codec's rate: one packet's worth.
		pcm = fit(m.down.process(rate, c.audioRate, chunk, pcm[len(chunk):len(chunk)]), c.samples())
	}
	ts, marker := m.ts, first
	if isTone {
		// A key instead of audio (RFC 4733 §2.5.1): every packet of an
		// event carries the timestamp of its start.
		payload = append(payload[:0], tone...)
		pt, ts, marker = dtmfPT, toneTS, toneStart
	} else if c == g722 {
		// The encoder runs on: a sample stream without gaps, silence
		// included, keeps the peer's decoder in step with it.
		if m.enc == nil {
			m.enc = audio.NewG722Encoder()
		}
		payload = m.enc.Encode(payload[:0], pcm)
	} else if c == opusCodec {
		if m.oenc == nil {
			enc, err := newOpusEncoder()
			if err != nil {
				m.log.Error("opus encoder", "err", err)
				return
			}
			m.oenc = enc
		}
		b, err := m.oenc.Encode(pcm)
		if err != nil {
			m.log.Error("opus encode", "err", err)
			return
		}
		payload = append(payload[:0], b...)
	} else if c == pcma {
		payload = audio.EncodeALaw(payload[:0], pcm)
	} else {
		payload = audio.EncodeULaw(payload[:0], pcm)
	}
	p := rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: marker, PayloadType: pt,
			SequenceNumber: m.seq, Timestamp: ts, SSRC: m.ssrc,
		},
		Payload: payload,
	}
	m.seq++
	m.ts += c.tsStep()
	if !sending || !to.IsValid() {
		return // on hold, or nowhere to send: the clock runs on
	}
	size, err := p.MarshalTo(buf)
	if err != nil {
		return
	}
	if m.onSend != nil {
		m.onSend(now)
	}
	m.conn.WriteToUDPAddrPort(buf[:size], to)
}

// run reads RTP until the socket is closed or the media times out. Audio
// goes through the shared receive path (transport/rtpaudio: jitter buffer,
// loss concealment) with the call's decoder; telephone-events are taken
// out before it.
func (m *media) run(ctx context.Context) {
	m.lastRx = time.Now()
	rx := rtpaudio.NewReceiver(callDecoder{m}, rtpaudio.Config{})
	err := rx.Run(ctx, rtpaudio.SourceFunc(m.readPacket), func(pcm []int16) error {
		select {
		case m.audio <- pcm:
		default: // the pipeline is behind: drop rather than stall the socket
			m.dropped.Add(1)
		}
		return nil
	})
	if errors.Is(err, ErrMediaTimeout) {
		m.dying.Do(func() { close(m.dead) })
	}
	m.stats = rx.Stats()
}

// readPacket implements rtpaudio.Source: it returns the next audio packet
// the call accepts, handling telephone-events and dropping the rest on the
// way; on a timeout it checks the media timeout.
func (m *media) readPacket(deadline time.Time) (*rtp.Packet, error) {
	buf := make([]byte, maxPayload)
	for {
		m.conn.SetReadDeadline(deadline)
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && m.expired(time.Now()) {
				return nil, ErrMediaTimeout
			}
			return nil, err
		}
		if p := m.accept(buf[:n], from); p != nil {
			return p, nil
		}
	}
}

// callDecoder is the rtpaudio.Decoder of a call: G.722, μ-law or A-law,
// whichever the call negotiated last, resampled to the call's rate when a
// re-INVITE moved the call to a codec of another rate. None of them has
// loss concealment of its own, so a lost packet is concealed by audio.PLC
// (the last pitch period repeated and faded, ITU-T G.711 Appendix I)
// instead of a gap of silence with a click at each edge. The G.722 decoder
// runs on over a loss, its adaptation resuming on the next packet.
type callDecoder struct{ m *media }

func (d callDecoder) codec() (codec, int) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return d.m.codec, d.m.rate
}

// Format is the call's format, whatever the codec's rate.
func (d callDecoder) Format() frame.Format {
	_, rate := d.codec()
	return frame.Format{SampleRate: rate, Channels: 1}
}

func (d callDecoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	c, rate := d.codec()
	dst := pcm
	if c.audioRate != rate {
		dst = d.m.dbuf[:0]
	}
	at := len(dst)
	switch c {
	case opusCodec:
		dec, err := d.opus()
		if err != nil {
			return pcm, err
		}
		if dst, err = dec.Decode(dst, payload); err != nil {
			return pcm, err
		}
		// Opus conceals loss itself (and rebuilds it from FEC).
		if c.audioRate == rate {
			return dst, nil
		}
		d.m.dbuf = dst
		return d.toCall(pcm, c, rate, dst), nil
	case g722:
		if d.m.dec == nil {
			d.m.dec = audio.NewG722Decoder()
		}
		dst = d.m.dec.Decode(dst, payload)
	case pcma:
		dst = audio.DecodeALaw(dst, payload)
	default:
		dst = audio.DecodeULaw(dst, payload)
	}
	d.plc(c).Good(dst[at:])
	if c.audioRate == rate {
		return dst, nil
	}
	d.m.dbuf = dst
	return d.toCall(pcm, c, rate, dst), nil
}

func (d callDecoder) Conceal(pcm []int16) ([]int16, error) {
	c, rate := d.codec()
	if c == opusCodec {
		return d.opusOr(pcm, c, rate, func(dec *opus.Decoder, dst []int16) ([]int16, error) { return dec.Conceal(dst) })
	}
	if c.audioRate == rate {
		return d.plc(c).Conceal(pcm, c.samples()), nil
	}
	d.m.dbuf = d.plc(c).Conceal(d.m.dbuf[:0], c.samples())
	return d.toCall(pcm, c, rate, d.m.dbuf), nil
}

// errNoFEC tells rtpaudio that the codec in use carries no FEC: it
// conceals the loss instead.
var errNoFEC = errors.New("sip: the call's codec has no FEC")

// DecodeFEC implements rtpaudio.FECDecoder: on an Opus call the lost
// packet is rebuilt from the next one's in-band FEC.
func (d callDecoder) DecodeFEC(pcm []int16, next []byte) ([]int16, error) {
	c, rate := d.codec()
	if c != opusCodec {
		return pcm, errNoFEC
	}
	return d.opusOr(pcm, c, rate, func(dec *opus.Decoder, dst []int16) ([]int16, error) { return dec.DecodeFEC(dst, next) })
}

// opusOr runs f, an Opus decoding, appending to pcm at the call's rate.
func (d callDecoder) opusOr(pcm []int16, c codec, rate int, f func(*opus.Decoder, []int16) ([]int16, error)) ([]int16, error) {
	dec, err := d.opus()
	if err != nil {
		return pcm, err
	}
	if c.audioRate == rate {
		return f(dec, pcm)
	}
	out, err := f(dec, d.m.dbuf[:0])
	if err != nil {
		return pcm, err
	}
	d.m.dbuf = out
	return d.toCall(pcm, c, rate, out), nil
}

// opus returns the call's Opus decoder, made on first use.
func (d callDecoder) opus() (*opus.Decoder, error) {
	if d.m.odec == nil {
		dec, err := opus.NewDecoder()
		if err != nil {
			return nil, err
		}
		d.m.odec = dec
	}
	return d.m.odec, nil
}

// toCall appends in, one packet of the codec's audio, to pcm at the
// call's rate.
func (d callDecoder) toCall(pcm []int16, c codec, rate int, in []int16) []int16 {
	at := len(pcm)
	pcm = d.m.up.process(c.audioRate, rate, in, pcm)
	return append(pcm[:at], fit(pcm[at:], samplesIn(rate, ptime))...)
}

// plc is the call's concealer at the codec's rate (new when the rate
// changes).
func (d callDecoder) plc(c codec) *audio.PLC {
	if d.m.plc == nil || d.m.plcRate != c.audioRate {
		d.m.plc, d.m.plcRate = audio.NewPLC(c.audioRate), c.audioRate
	}
	return d.m.plc
}

// resampler converts one direction of a call between two rates, made anew
// when they change.
type resampler struct {
	from, to int
	r        *audio.Resampler
}

func (r *resampler) process(from, to int, in, out []int16) []int16 {
	if r.r == nil || r.from != from || r.to != to {
		rs, err := audio.NewResampler(from, to)
		if err != nil { // 8 and 16 kHz are always supported
			panic(fmt.Sprintf("sip: resampler %d → %d Hz: %v", from, to, err))
		}
		r.r, r.from, r.to = rs, from, to
	}
	return r.r.Process(out, in)
}

// samplesIn is the number of samples in d of mono audio at rate.
func samplesIn(rate int, d time.Duration) int {
	return frame.Format{SampleRate: rate, Channels: 1}.Samples(d)
}

// fit returns s cut or padded with silence to n samples: a packet is always
// one ptime, whatever the resampler's filter delay left over.
func fit(s []int16, n int) []int16 {
	if len(s) >= n {
		return s[:n]
	}
	return append(s, make([]int16, n-len(s))...)
}

// expired reports whether the peer has sent nothing for too long. A held
// call does not expire; unholding restarts the count.
func (m *media) expired(now time.Time) bool {
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	if held {
		m.lastRx = now
		return false
	}
	limit := m.timeout
	if !m.gotFirst {
		limit = m.firstTimeout
	}
	return now.Sub(m.lastRx) > limit
}

// accept takes one datagram: RTP from an address the call accepts, in a
// payload type it negotiated. It returns an audio packet (its own copy),
// handles a telephone-event itself, and drops everything else.
func (m *media) accept(b []byte, from netip.AddrPort) *rtp.Packet {
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), b...)); err != nil || p.Version != 2 {
		m.dropped.Add(1)
		return nil
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	m.mu.Lock()
	if m.latched && from != m.remote {
		m.mu.Unlock()
		m.dropped.Add(1)
		return nil // a stranger
	}
	if !m.latched {
		ok := false
		for _, a := range m.allowed {
			ok = ok || a == from.Addr()
		}
		if !ok {
			m.mu.Unlock()
			m.dropped.Add(1)
			return nil
		}
		// Symmetric RTP: answer to where the media really comes from.
		m.remote, m.latched = from, true
	}
	pt, dtmfPT := m.pt, m.dtmfPT
	m.mu.Unlock()
	switch {
	case dtmfPT != 0 && p.PayloadType == dtmfPT:
		m.lastRx, m.gotFirst = time.Now(), true
		m.received.Add(1)
		ev, err := parseToneEvent(p.Payload)
		if err != nil {
			return nil
		}
		if d := m.tones.add(p.Timestamp, ev); d != 0 {
			select {
			case m.digits <- d:
			default:
			}
		}
		return nil
	case p.PayloadType == pt && len(p.Payload) > 0:
		m.lastRx, m.gotFirst = time.Now(), true
		m.received.Add(1)
		return &p
	}
	m.dropped.Add(1)
	return nil
}

// portPool hands out RTP ports (even numbers, RFC 3550 §11) from a range.
type portPool struct {
	ip       netip.Addr
	min, max int
	mu       sync.Mutex
	next     int
}

// listen opens a UDP socket on the next free even port of the range.
func (pp *portPool) listen() (*net.UDPConn, int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	span := (pp.max - pp.min) / 2
	if pp.next < pp.min || pp.next > pp.max {
		pp.next = pp.min
	}
	for range span + 1 {
		port := pp.next
		pp.next += 2
		if pp.next > pp.max {
			pp.next = pp.min
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(pp.ip, uint16(port))))
		if err == nil {
			return c, port, nil
		}
	}
	return nil, 0, fmt.Errorf("%w in %d-%d", ErrNoPorts, pp.min, pp.max)
}

// newOpusEncoder returns an encoder for a call's voice: in-band FEC on, for
// the loss a phone network has.
func newOpusEncoder() (*opus.Encoder, error) {
	enc, err := opus.NewEncoder()
	if err != nil {
		return nil, err
	}
	if err := enc.SetInBandFEC(true, 5); err != nil {
		return nil, err
	}
	return enc, nil
}
