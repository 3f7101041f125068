package webrtc

import (
	"math"
	"testing"
)

func tone(n, from int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(from+i)/opusRate))
	}
	return pcm
}

func rms(pcm []int16) float64 {
	var e float64
	for _, v := range pcm {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(pcm)))
}

// TestConcealment encodes a tone, loses packets, and checks each lost one
// is concealed with a full frame of sound (FEC or PLC), up to the bound.
func TestConcealment(t *testing.T) {
	enc, err := newEncoder()
	if err != nil {
		t.Fatal(err)
	}
	enc.enc.SetInBandFEC(true)
	enc.enc.SetPacketLossPerc(20)
	dec, err := newDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for i := range 20 {
		p, err := enc.encode(tone(frameSamples, i*frameSamples))
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, append([]byte(nil), p...))
	}
	for i := range 10 {
		if got := dec.decode(Unit{Payload: packets[i]}); len(got) != frameSamples {
			t.Fatalf("packet %d decoded to %d samples", i, len(got))
		}
	}
	// Packet 10 lost, 11 held (FEC may rebuild 10); 12 lost with nothing
	// after it (PLC).
	lost := dec.decode(Unit{Next: packets[11]})
	dec.decode(Unit{Payload: packets[11]})
	plc := dec.decode(Unit{})
	for name, pcm := range map[string][]int16{"with next": lost, "alone": plc} {
		if len(pcm) != frameSamples {
			t.Errorf("%s: concealed %d samples, want %d", name, len(pcm), frameSamples)
		}
		if r := rms(pcm); r < 500 {
			t.Errorf("%s: concealed frame RMS %.0f: silence, not concealment", name, r)
		}
	}
	if dec.FEC+dec.PLC != 2 {
		t.Errorf("FEC %d + PLC %d, want 2 concealed frames", dec.FEC, dec.PLC)
	}
	// A long gap: concealment stops after maxConcealed frames.
	for range maxConcealed {
		dec.decode(Unit{})
	}
	if r := rms(dec.decode(Unit{})); r != 0 {
		t.Errorf("frame %d of a gap has RMS %.0f, want silence", maxConcealed+2, r)
	}
	// Garbage is concealed, not fatal.
	if got := dec.decode(Unit{Payload: []byte{0xff, 0xff, 0xff}}); len(got) != frameSamples || dec.Corrupt != 1 {
		t.Errorf("corrupt packet: %d samples, corrupt count %d", len(got), dec.Corrupt)
	}
}

func TestEncodePads(t *testing.T) {
	enc, err := newEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := newDecoder()
	p, err := enc.encode(tone(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.decode(Unit{Payload: p}); len(got) != frameSamples {
		t.Errorf("a short chunk decoded to %d samples, want a full 20 ms frame", len(got))
	}
	if _, err := enc.encode(make([]int16, frameSamples+1)); err == nil {
		t.Error("encoding more than 20 ms: no error")
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"text","text":"hi"}`))
	f.Add([]byte(`{"type":"end"}`))
	f.Add([]byte(`{"type":"start"}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			if _, ok := err.(*protocolError); !ok {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if m.Type != "text" && m.Type != "end" || len(m.Text) > MaxText {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("")
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		checkOffer(offer) // must not panic
	})
}

func BenchmarkEncode(b *testing.B) {
	enc, _ := newEncoder()
	pcm := tone(frameSamples, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.encode(pcm); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := newEncoder()
	p, _ := enc.encode(tone(frameSamples, 0))
	p = append([]byte(nil), p...)
	dec, _ := newDecoder()
	b.ReportAllocs()
	for b.Loop() {
		dec.decode(Unit{Payload: p})
	}
}
