package audio

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"testing"
)

// Reference values of G.711 (tables 1 and 2 of the Recommendation, scaled
// to 16 bits as in the reference implementations): the end points of each
// law, its zero codes and the first step.
func TestG711DecodeVectors(t *testing.T) {
	ulaw := []struct {
		code uint8
		want int16
	}{
		{0xFF, 0}, {0x7F, 0}, // positive and negative zero
		{0xFE, 8}, {0x7E, -8},
		{0x80, 32124}, {0x00, -32124}, // largest magnitudes
		{0xEF, 132}, {0xDF, 396}, {0x8F, 16764},
	}
	for _, v := range ulaw {
		if got := DecodeULaw(nil, []byte{v.code})[0]; got != v.want {
			t.Errorf("μ-law %#02x = %d, want %d", v.code, got, v.want)
		}
	}
	alaw := []struct {
		code uint8
		want int16
	}{
		{0xD5, 8}, {0x55, -8}, // the smallest step on either side of zero
		{0xAA, 32256}, {0x2A, -32256}, // largest magnitudes
		{0xC5, 264}, {0xF5, 528}, {0xA5, 16896},
	}
	for _, v := range alaw {
		if got := DecodeALaw(nil, []byte{v.code})[0]; got != v.want {
			t.Errorf("A-law %#02x = %d, want %d", v.code, got, v.want)
		}
	}
}

func TestG711EncodeVectors(t *testing.T) {
	for _, v := range []struct {
		pcm        int16
		ulaw, alaw uint8
	}{
		{0, 0xFF, 0xD5},
		{-5, 0x7E, 0x55}, // rounds to -1 (μ, 14 bits) and -1 (A, 13 bits)
		{32767, 0x80, 0xAA},
		{-32768, 0x00, 0x2A},
		{1000, 0xCE, 0xFA},
		{-1000, 0x4E, 0x7A},
	} {
		if got := EncodeULaw(nil, []int16{v.pcm})[0]; got != v.ulaw {
			t.Errorf("μ-law(%d) = %#02x, want %#02x", v.pcm, got, v.ulaw)
		}
		if got := EncodeALaw(nil, []int16{v.pcm})[0]; got != v.alaw {
			t.Errorf("A-law(%d) = %#02x, want %#02x", v.pcm, got, v.alaw)
		}
	}
}

// Every code decodes to a value that encodes back to the same code (μ-law's
// negative zero aside), and decoding is monotonic in the magnitude.
func TestG711RoundTrip(t *testing.T) {
	for c := range 256 {
		b := []byte{byte(c)}
		if got := EncodeULaw(nil, DecodeULaw(nil, b))[0]; got != byte(c) && c != 0x7F {
			t.Errorf("μ-law %#02x → %d → %#02x", c, DecodeULaw(nil, b)[0], got)
		}
		if got := EncodeALaw(nil, DecodeALaw(nil, b))[0]; got != byte(c) {
			t.Errorf("A-law %#02x → %d → %#02x", c, DecodeALaw(nil, b)[0], got)
		}
	}
	prevU, prevA := int16(-32768), int16(-32768)
	for s := -32768; s <= 32767; s += 7 {
		u := DecodeULaw(nil, EncodeULaw(nil, []int16{int16(s)}))[0]
		a := DecodeALaw(nil, EncodeALaw(nil, []int16{int16(s)}))[0]
		if u < prevU || a < prevA {
			t.Fatalf("not monotonic at %d: μ %d after %d, A %d after %d", s, u, prevU, a, prevA)
		}
		prevU, prevA = u, a
	}
}

// The tables agree with sox's G.711 codecs on every 16-bit sample, and on
// decoding every code.
func TestG711MatchesSox(t *testing.T) {
	sox, err := exec.LookPath("sox")
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal("sox not installed")
		}
		t.Skip("sox not installed: install it (make deps) to cross-check G.711 with it")
	}
	pcm := make([]int16, 65536)
	for i := range pcm {
		pcm[i] = int16(i - 32768)
	}
	raw := EncodePCM16(nil, pcm)
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	for _, law := range []struct {
		name   string
		enc    func([]byte, []int16) []byte
		dec    func([]int16, []byte) []int16
		soxEnc string
	}{
		{"mu-law", EncodeULaw, DecodeULaw, "mu-law"},
		{"a-law", EncodeALaw, DecodeALaw, "a-law"},
	} {
		run := func(in []byte, args ...string) []byte {
			t.Helper()
			cmd := exec.Command(sox, args...)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sox %v: %v", args, err)
			}
			return out
		}
		got := law.enc(nil, pcm)
		want := run(raw, "-D", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "8000", "-L", "-",
			"-t", "raw", "-e", law.soxEnc, "-b", "8", "-c", "1", "-r", "8000", "-")
		if len(want) != len(got) {
			t.Fatalf("%s: sox gave %d codes for %d samples", law.name, len(want), len(got))
		}
		diff := 0
		for i := range got {
			if got[i] != want[i] {
				if diff < 5 {
					t.Errorf("%s: sample %d: got %#02x, sox %#02x", law.name, pcm[i], got[i], want[i])
				}
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("%s: %d of %d samples differ from sox", law.name, diff, len(got))
		}
		dec := run(codes, "-D", "-t", "raw", "-e", law.soxEnc, "-b", "8", "-c", "1", "-r", "8000", "-",
			"-t", "raw", "-e", "signed", "-b", "16", "-L", "-")
		wantPCM := make([]int16, len(dec)/2)
		binary.Read(bytes.NewReader(dec), binary.LittleEndian, wantPCM)
		for i, s := range law.dec(nil, codes) {
			if s != wantPCM[i] {
				t.Errorf("%s: code %#02x decodes to %d, sox %d", law.name, i, s, wantPCM[i])
			}
		}
	}
}

func FuzzG711(f *testing.F) {
	f.Add([]byte{0, 0x7F, 0x80, 0xFF, 0x55, 0xD5})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any bytes decode, one sample per byte; a decoded signal
		// re-encodes to codes that decode to the same samples.
		for _, law := range []struct {
			enc func([]byte, []int16) []byte
			dec func([]int16, []byte) []int16
		}{{EncodeULaw, DecodeULaw}, {EncodeALaw, DecodeALaw}} {
			pcm := law.dec(nil, b)
			if len(pcm) != len(b) {
				t.Fatalf("%d codes decode to %d samples", len(b), len(pcm))
			}
			again := law.dec(nil, law.enc(nil, pcm))
			for i := range pcm {
				if again[i] != pcm[i] {
					t.Fatalf("code %#02x: %d re-decodes to %d", b[i], pcm[i], again[i])
				}
			}
		}
		// Bytes read as PCM16 encode to one code per sample.
		if len(b) >= 2 {
			pcm, _ := DecodePCM16(nil, b[:len(b)&^1])
			if n := len(EncodeULaw(nil, pcm)); n != len(pcm) {
				t.Fatalf("μ-law: %d samples → %d codes", len(pcm), n)
			}
			if n := len(EncodeALaw(nil, pcm)); n != len(pcm) {
				t.Fatalf("A-law: %d samples → %d codes", len(pcm), n)
			}
		}
	})
}

func BenchmarkEncodeULaw(b *testing.B) {
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(i * 200)
	}
	dst := make([]byte, 0, 160)
	b.SetBytes(320)
	for b.Loop() {
		dst = EncodeULaw(dst[:0], pcm)
	}
}
