package sip

import (
	"context"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// fakeConn is a packetConn on channels: reads take from in, writes are
// recorded with their (fake, under synctest) time.
type fakeConn struct {
	in chan datagram

	mu       sync.Mutex
	deadline time.Time
	sent     []sentPacket
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

type sentPacket struct {
	at time.Time
	to netip.AddrPort
	p  rtp.Packet
}

func newFakeConn() *fakeConn { return &fakeConn{in: make(chan datagram, 64)} }

func (c *fakeConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	d := time.Until(c.deadline)
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case dg, ok := <-c.in:
		if !ok {
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		return copy(b, dg.b), dg.from, nil
	case <-t.C:
		return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
	}
}

func (c *fakeConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), b...)); err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.sent = append(c.sent, sentPacket{at: time.Now(), to: to, p: p})
	c.mu.Unlock()
	return len(b), nil
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) Close() error { return nil }

func (c *fakeConn) packets() []sentPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sentPacket(nil), c.sent...)
}

var peer = netip.MustParseAddrPort("10.0.0.1:4000")

func testOffer(c codec) *offer {
	return &offer{addr: peer, codec: c, pt: c.pt, dtmfPT: 101, dir: SendRecv}
}

// The sender puts out one packet every 20 ms from the first tick on, with
// consecutive sequence numbers and timestamps 160 apart, silence when
// nothing is queued and the queued audio otherwise.
func TestSendPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		m.apply(testOffer(pcmu), SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan struct{})
		go func() { m.send(ctx); close(done) }()
		time.Sleep(time.Second + time.Millisecond)
		tone := make([]int16, 400) // 2.5 packets
		for i := range tone {
			tone[i] = 1000
		}
		m.WriteAudio(tone)
		time.Sleep(9 * time.Second)
		cancel()
		<-done

		ps := conn.packets()
		if len(ps) != 500 {
			t.Fatalf("%d packets in 10 s, want 500", len(ps))
		}
		loud := audio.EncodeULaw(nil, []int16{1000})[0]
		silent := audio.EncodeULaw(nil, []int16{0})[0]
		for i, p := range ps {
			if want := start.Add(time.Duration(i+1) * ptime); !p.at.Equal(want) {
				t.Fatalf("packet %d at %v, want %v", i, p.at.Sub(start), want.Sub(start))
			}
			if p.to != peer || p.p.PayloadType != 0 || len(p.p.Payload) != pcmu.samples() {
				t.Fatalf("packet %d: to %v pt %d %d bytes", i, p.to, p.p.PayloadType, len(p.p.Payload))
			}
			if p.p.Marker != (i == 0) {
				t.Errorf("packet %d: marker %v", i, p.p.Marker)
			}
			if i > 0 && (p.p.SequenceNumber != ps[i-1].p.SequenceNumber+1 || p.p.Timestamp != ps[i-1].p.Timestamp+tsStep || p.p.SSRC != ps[0].p.SSRC) {
				t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, p.p.SequenceNumber, p.p.Timestamp, ps[i-1].p.SequenceNumber, ps[i-1].p.Timestamp)
			}
			// The tone was queued between packets 49 and 50.
			for j, b := range p.p.Payload {
				n := (i-50)*pcmu.samples() + j
				want := silent
				if n >= 0 && n < len(tone) {
					want = loud
				}
				if b != want {
					t.Fatalf("packet %d byte %d: %#x, want %#x", i, j, b, want)
				}
			}
		}
	})
}

// On hold (we answered recvonly or inactive) the clock runs on but
// nothing is sent; unholding resumes without a gap in the timestamps.
func TestSendHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		o := testOffer(pcma)
		m.apply(o, SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.send(ctx); close(done) }()
		time.Sleep(200*time.Millisecond + time.Millisecond)
		hold := *o
		hold.dir = SendOnly
		m.apply(&hold, RecvOnly, netip.Addr{})
		time.Sleep(time.Second)
		m.apply(o, SendRecv, netip.Addr{})
		time.Sleep(200 * time.Millisecond)
		cancel()
		<-done
		ps := conn.packets()
		if len(ps) != 20 {
			t.Fatalf("%d packets, want 10 before the hold and 10 after", len(ps))
		}
		if gap := ps[10].p.Timestamp - ps[9].p.Timestamp; gap != 51*tsStep {
			t.Errorf("timestamps jump %d over the hold, want %d", gap, 51*tsStep)
		}
		if ps[10].p.PayloadType != 8 {
			t.Errorf("payload type %d, want 8 (PCMA)", ps[10].p.PayloadType)
		}
	})
}

func rtpBytes(t *testing.T, pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 42}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RTP is accepted from the addresses of the SDP and of the signalling
// only, then only from the address it first came from (symmetric RTP,
// which also becomes where voiced sends); unknown payload types and garbage
// are dropped. (Order, repeats and losses are the jitter buffer's, in
// transport/rtpaudio.)
func TestAccept(t *testing.T) {
	m := newMedia(newFakeConn(), 10000, nil, 15*time.Second, 30*time.Second)
	m.apply(testOffer(pcma), SendRecv, netip.MustParseAddr("10.0.0.9"))
	speech := audio.EncodeALaw(nil, []int16{1000, -1000, 2000})
	stranger := netip.MustParseAddrPort("10.6.6.6:4000")
	nat := netip.MustParseAddrPort("10.0.0.9:31234") // the signalling address, another port

	var got []uint16
	for _, dg := range []struct {
		b    []byte
		from netip.AddrPort
	}{
		{rtpBytes(t, 8, 1, 160, speech), stranger},
		{[]byte("not rtp"), nat},
		{rtpBytes(t, 8, 2, 320, speech), nat},
		{rtpBytes(t, 8, 3, 480, speech), peer}, // the SDP address, but it is latched now
		{rtpBytes(t, 0, 4, 640, speech), nat},  // not negotiated
		{rtpBytes(t, 8, 5, 800, nil), nat},     // empty
		{rtpBytes(t, 8, 6, 960, speech), nat},
	} {
		if p := m.accept(dg.b, dg.from); p != nil {
			if string(p.Payload) != string(speech) {
				t.Errorf("payload %x", p.Payload)
			}
			got = append(got, p.SequenceNumber)
		}
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 6 {
		t.Errorf("accepted %v, want [2 6]", got)
	}
	if m.remote != nat {
		t.Errorf("sending to %v, want where RTP comes from, %v", m.remote, nat)
	}
	if d := m.dropped.Load(); d != 5 {
		t.Errorf("dropped %d, want 5", d)
	}
	// A telephone-event on the negotiated payload type is a key, once.
	m.accept(rtpBytes(t, 101, 7, 1120, []byte{9, 0x0a, 0, 160}), nat)
	m.accept(rtpBytes(t, 101, 8, 1120, []byte{9, 0x8a, 1, 64}), nat)
	if len(m.digits) != 1 || <-m.digits != '9' {
		t.Errorf("keys not delivered once")
	}
}

// The receive path puts reordered packets back in order and conceals a
// lost one: it carries on from the last audio heard, and the packet after
// it takes over through a short cross-fade.
func TestReceiveReorders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		m.apply(testOffer(pcmu), SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		pkt := func(seq uint16, v int16) datagram {
			pcm := make([]int16, pcmu.samples())
			for i := range pcm {
				pcm[i] = v
			}
			return datagram{rtpBytes(t, 0, seq, uint32(seq)*tsStep, audio.EncodeULaw(nil, pcm)), peer}
		}
		for _, d := range []datagram{pkt(1, 1000), pkt(3, 3000), pkt(2, 2000), pkt(5, 5000), pkt(6, 6000)} {
			conn.in <- d
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Second)
		var firsts, lasts []int16
		for len(m.audio) > 0 {
			c := <-m.audio
			firsts, lasts = append(firsts, c[0]), append(lasts, c[len(c)-1])
		}
		// Chunk 4 is the lost packet: it begins as the last one heard. Chunk
		// 5 begins cross-faded from it and ends as sent.
		want := []int16{1000, 2000, 3000, 3000, 5000, 6000}
		if len(firsts) != len(want) {
			t.Fatalf("chunks start with %v, want %v", firsts, want)
		}
		g711 := func(v int16) int16 { return audio.DecodeULaw(nil, audio.EncodeULaw(nil, []int16{v}))[0] }
		for i, v := range firsts {
			w, got := g711(want[i]), v
			if i == 4 {
				got = lasts[i]
			}
			if got != w {
				t.Fatalf("chunks start with %v and end with %v, want %v", firsts, lasts, want)
			}
		}
	})
}

// A call without media ends after 30 s before the first packet and 15 s
// after the last; while held it does not time out.
func TestMediaTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		o := testOffer(pcmu)
		m.apply(o, SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go m.run(ctx)
		dead := func() bool {
			synctest.Wait()
			select {
			case <-m.dead:
				return true
			default:
				return false
			}
		}
		time.Sleep(20 * time.Second)
		conn.in <- datagram{rtpBytes(t, 0, 1, 160, make([]byte, 160)), peer}
		<-m.audio
		time.Sleep(14 * time.Second)
		if dead() {
			t.Fatal("timed out 14 s after the last packet")
		}
		hold := *o
		hold.dir = Inactive
		m.apply(&hold, Inactive, netip.Addr{})
		time.Sleep(time.Minute)
		if dead() {
			t.Fatal("timed out while held")
		}
		m.apply(o, SendRecv, netip.Addr{})
		time.Sleep(14 * time.Second)
		if dead() {
			t.Fatal("timed out 14 s after unhold")
		}
		time.Sleep(3 * time.Second)
		if !dead() {
			t.Fatal("no timeout 17 s after unhold")
		}
	})
}

type emitted struct{ passed []frame.Frame }

func (e *emitted) Emit(frame.Frame)      {}
func (e *emitted) EmitUp(frame.Frame)    {}
func (e *emitted) Pass(f frame.Frame)    { e.passed = append(e.passed, f) }
func (e *emitted) frames() []frame.Frame { return e.passed }

// Barge-in drops the audio already handed to the RTP sender at once.
func TestOutputInterruptionClearsRTPQueue(t *testing.T) {
	m := newMedia(newFakeConn(), 10000, nil, 15*time.Second, 30*time.Second)
	m.WriteAudio(make([]int16, 800))
	o := &output{Playout: nil, m: m}
	o.Playout = newTestPlayout(m)
	var e emitted
	if err := o.Process(context.Background(), &frame.Interruption{Reason: "test"}, &e); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.queue)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d samples still queued for RTP after the interruption", n)
	}
	if fs := e.frames(); len(fs) != 1 {
		t.Errorf("interruption not passed on: %v", fs)
	}
}

var _ pipeline.Emitter = (*emitted)(nil)

func newTestPlayout(m *media) *transport.Playout {
	return transport.NewPlayout(m, transport.PlayoutConfig{Format: pcmu.format()})
}

// A G.722 call sends 16 kHz audio as one 160-byte packet per 20 ms,
// timestamps 160 apart (its RTP clock runs at 8000 Hz), in one continuous
// G.722 stream; it decodes the peer's G.722 into 320-sample chunks at
// 16 kHz, which an independent decoder of the same stream reproduces.
func TestG722Media(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		m.apply(testOffer(g722), SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { m.send(ctx) })
		wg.Go(func() { m.run(ctx) })

		// A 16 kHz tone at 1 kHz, half a second.
		tone := make([]int16, 8000)
		for i := range tone {
			tone[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/16000))
		}
		m.WriteAudio(tone)

		// The peer's half second of a 3 kHz tone, a wideband-only
		// sound, 25 packets.
		peerTone := make([]int16, 8000)
		for i := range peerTone {
			peerTone[i] = int16(6000 * math.Sin(2*math.Pi*3000*float64(i)/16000))
		}
		enc := audio.NewG722Encoder()
		var sentCode []byte
		for k := range 25 {
			code := enc.Encode(nil, peerTone[k*320:(k+1)*320])
			sentCode = append(sentCode, code...)
			conn.in <- datagram{rtpBytes(t, 9, uint16(k+1), uint32(k)*tsStep, code), peer}
			time.Sleep(ptime)
		}
		time.Sleep(time.Second)
		cancel()
		wg.Wait()

		ps := conn.packets()
		if len(ps) < 70 {
			t.Fatalf("%d packets in 1.5 s, want 75", len(ps))
		}
		var code []byte
		for i, p := range ps {
			if p.p.PayloadType != 9 || len(p.p.Payload) != 160 {
				t.Fatalf("packet %d: pt %d, %d bytes, want pt 9 and 160 bytes", i, p.p.PayloadType, len(p.p.Payload))
			}
			if i > 0 && p.p.Timestamp != ps[i-1].p.Timestamp+160 {
				t.Fatalf("packet %d: timestamp %d after %d, want 160 more", i, p.p.Timestamp, ps[i-1].p.Timestamp)
			}
			code = append(code, p.p.Payload...)
		}
		// The stream decodes to the tone, at 16 kHz: the samples the
		// sender took from the queue, in order.
		out := audio.NewG722Decoder().Decode(nil, code)
		if len(out) != 320*len(ps) {
			t.Fatalf("%d samples in %d packets", len(out), len(ps))
		}
		lag := 22
		var sig, noise float64
		for i := 1000; i < len(tone); i++ {
			d := float64(out[i+lag]) - float64(tone[i])
			sig += float64(tone[i]) * float64(tone[i])
			noise += d * d
		}
		if snr := 10 * math.Log10(sig/noise); snr < 20 {
			t.Errorf("sent tone decodes at SNR %.1f dB, want at least 20", snr)
		}
		if db := audio.DBFS(out[len(tone)+200:]); db > -60 {
			t.Errorf("silence after the tone at %.1f dBFS", db)
		}

		var got []int16
		for len(m.audio) > 0 {
			chunk := <-m.audio
			if len(chunk) != 320 {
				t.Fatalf("received chunk of %d samples, want 320", len(chunk))
			}
			got = append(got, chunk...)
		}
		want := audio.NewG722Decoder().Decode(nil, sentCode)
		if !slices.Equal(got, want) {
			t.Errorf("received %d samples, not the %d the peer's code decodes to", len(got), len(want))
		}
	})
}

// tone returns n samples of a sine of hz at rate.
func tone(hz, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*float64(hz)*float64(i)/float64(rate)))
	}
	return out
}

// crossings counts the sign changes of s.
func crossings(s []int16) int {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			n++
		}
	}
	return n
}

// A re-INVITE may move a G.722 call (16 kHz) to G.711 (8 kHz): the call's
// side keeps 16 kHz, and the media resamples both ways. A 1 kHz tone sent
// in PCMU arrives as 16 kHz audio of 1 kHz, and the bot's 16 kHz 1 kHz tone
// goes out as PCMU of 1 kHz, a packet of 160 bytes every 20 ms.
func TestCodecChangeKeepsTheCallsRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		m.apply(testOffer(g722), SendRecv, netip.Addr{})
		m.apply(testOffer(pcmu), SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { m.run(ctx) })
		wg.Go(func() { m.send(ctx) })
		defer func() { cancel(); wg.Wait() }()

		in := audio.EncodeULaw(nil, tone(1000, 8000, 8000, 8000))
		for k := range 25 {
			conn.in <- datagram{rtpBytes(t, 0, uint16(k+1), uint32(k+1)*tsStep, in[k*160:(k+1)*160]), peer}
			time.Sleep(ptime)
		}
		m.WriteAudio(tone(1000, 16000, 16000, 8000))
		time.Sleep(time.Second)
		var got []int16
		for len(m.audio) > 0 {
			c := <-m.audio
			if len(c) != 320 {
				t.Fatalf("a chunk of %d samples, want 320 (20 ms at the call's 16 kHz)", len(c))
			}
			got = append(got, c...)
		}
		if len(got) < 20*320 {
			t.Fatalf("%d samples received, want at least 20 packets' worth", len(got))
		}
		// 1 kHz: 2 crossings per ms. The first packets carry the filter's
		// delay; judge the last 200 ms.
		if c := crossings(got[len(got)-3200:]); c < 396 || c > 404 {
			t.Errorf("%d zero crossings in 200 ms of the caller's 1 kHz tone at 16 kHz, want 400", c)
		}
		var out []int16
		for _, p := range conn.packets() {
			if p.p.PayloadType != 0 || len(p.p.Payload) != 160 {
				t.Fatalf("sent pt %d, %d bytes; want PCMU, 160", p.p.PayloadType, len(p.p.Payload))
			}
			out = audio.DecodeULaw(out, p.p.Payload)
		}
		// The bot's tone went out over the last second: look in its middle.
		if len(out) < 8000 {
			t.Fatalf("%d samples sent", len(out))
		}
		mid := out[len(out)-6000 : len(out)-4400] // 200 ms
		if c := crossings(mid); c < 396 || c > 404 {
			t.Errorf("%d zero crossings in 200 ms of the bot's 1 kHz tone sent in PCMU, want 400", c)
		}
	})
}

// An Opus call decodes to 48 kHz, and a lost packet is rebuilt from the
// next one's in-band FEC (the encoder voiced uses for calls puts it in).
func TestOpusCallRebuildsLossFromFEC(t *testing.T) {
	enc, err := newOpusEncoder()
	if err != nil {
		t.Fatal(err)
	}
	in := tone(440, 48000, 48000, 8000)
	var packets [][]byte
	for k := range 30 {
		b, err := enc.Encode(in[k*960 : (k+1)*960])
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, append([]byte(nil), b...))
	}
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		m := newMedia(conn, 10000, nil, 15*time.Second, 30*time.Second)
		o := testOffer(opusCodec)
		m.apply(o, SendRecv, netip.Addr{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.run(ctx); close(done) }()
		for k, p := range packets {
			if k == 12 {
				continue // lost
			}
			conn.in <- datagram{rtpBytes(t, opusCodec.pt, uint16(k+1), uint32(k+1)*960, p), peer}
			time.Sleep(ptime)
		}
		time.Sleep(time.Second)
		var chunks int
		for len(m.audio) > 0 {
			if c := <-m.audio; len(c) != 960 {
				t.Fatalf("a chunk of %d samples, want 960 (20 ms at 48 kHz)", len(c))
			}
			chunks++
		}
		cancel()
		<-done
		if chunks != len(packets) {
			t.Errorf("%d chunks for %d packets, one lost: want the loss filled", chunks, len(packets))
		}
		if m.stats.FEC != 1 || m.stats.PLC != 0 {
			t.Errorf("stats %+v: want the lost packet rebuilt by FEC", m.stats)
		}
	})
}
