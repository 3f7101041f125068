package opus

import (
	"errors"
	"math"
	"testing"
)

func tone(n, from int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(from+i)/Rate))
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

// TestConceal encodes a tone with in-band FEC and checks that a lost frame
// rebuilt from the next packet, and one concealed without it, are each a
// full frame of sound.
func TestConceal(t *testing.T) {
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.SetInBandFEC(true, 20); err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for i := range 12 {
		p, err := enc.Encode(tone(FrameSamples, i*FrameSamples))
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, append([]byte(nil), p...))
	}
	for i := range 10 {
		got, err := dec.Decode(nil, packets[i])
		if err != nil || len(got) != FrameSamples {
			t.Fatalf("packet %d: %d samples, %v", i, len(got), err)
		}
	}
	fec, err := dec.DecodeFEC(nil, packets[11]) // packet 10 lost
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(nil, packets[11]); err != nil {
		t.Fatal(err)
	}
	plc, err := dec.Conceal([]int16{1, 2}) // appends
	if err != nil {
		t.Fatal(err)
	}
	if len(plc) != 2+FrameSamples || plc[0] != 1 || plc[1] != 2 {
		t.Fatalf("Conceal appended %d samples to 2, or changed them", len(plc))
	}
	for name, pcm := range map[string][]int16{"fec": fec, "plc": plc[2:]} {
		if len(pcm) != FrameSamples {
			t.Errorf("%s: %d samples, want %d", name, len(pcm), FrameSamples)
		}
		if r := rms(pcm); r < 500 {
			t.Errorf("%s: RMS %.0f: silence, not concealment", name, r)
		}
	}
	if _, err := dec.Decode(nil, []byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage decoded without error")
	}
}

func TestEncodePads(t *testing.T) {
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	p, err := enc.Encode(tone(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dec.Decode(nil, p); err != nil || len(got) != FrameSamples {
		t.Errorf("a short chunk decoded to %d samples (%v), want a full 20 ms frame", len(got), err)
	}
	if _, err := enc.Encode(make([]int16, FrameSamples+1)); !errors.Is(err, ErrFrameTooLong) {
		t.Errorf("encoding more than 20 ms: %v, want ErrFrameTooLong", err)
	}
}

// FuzzDecode feeds arbitrary payloads: the decoder must not panic, and
// what it accepts is at most 120 ms of audio.
func FuzzDecode(f *testing.F) {
	enc, err := NewEncoder()
	if err != nil {
		f.Fatal(err)
	}
	p, err := enc.Encode(tone(FrameSamples, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), p...))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{0x78})
	dec, err := NewDecoder()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		pcm, err := dec.Decode(nil, payload)
		if err == nil && (len(pcm) == 0 || len(pcm) > MaxSamples) {
			t.Fatalf("decoded %d samples", len(pcm))
		}
		if pcm, err := dec.DecodeFEC(nil, payload); err == nil && len(pcm) > MaxSamples {
			t.Fatalf("FEC gave %d samples", len(pcm))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	enc, _ := NewEncoder()
	pcm := tone(FrameSamples, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(pcm); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := NewEncoder()
	p, _ := enc.Encode(tone(FrameSamples, 0))
	p = append([]byte(nil), p...)
	dec, _ := NewDecoder()
	buf := make([]int16, 0, MaxSamples)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(buf[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}
