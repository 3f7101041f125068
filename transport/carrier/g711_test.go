package carrier

import "testing"

// Reference values of ITU-T G.711 (Tables 2a and 2b, and the decoding
// rule of each law): code → decoded sample.
func TestG711ReferenceVectors(t *testing.T) {
	ulawRef := map[byte]int16{0xFF: 0, 0x7F: 0, 0x80: 32124, 0x00: -32124, 0xEF: 132, 0x6F: -132, 0xFE: 8}
	for c, want := range ulawRef {
		if got := ulawToLinear(c); got != want {
			t.Errorf("μ-law %#02x → %d, want %d", c, got, want)
		}
	}
	alawRef := map[byte]int16{0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256, 0xD4: 24, 0xC5: 264}
	for c, want := range alawRef {
		if got := alawToLinear(c); got != want {
			t.Errorf("A-law %#02x → %d, want %d", c, got, want)
		}
	}
	// Encoding the silence and the extremes.
	for _, tc := range []struct {
		s    int16
		u, a byte
	}{{0, 0xFF, 0xD5}, {32767, 0x80, 0xAA}, {-32768, 0x00, 0x2A}, {-1, 0x7F, 0x55}} {
		if got := linearToULaw(tc.s); got != tc.u {
			t.Errorf("μ-law(%d) = %#02x, want %#02x", tc.s, got, tc.u)
		}
		if got := linearToALaw(tc.s); got != tc.a {
			t.Errorf("A-law(%d) = %#02x, want %#02x", tc.s, got, tc.a)
		}
	}
}

// Every code decodes to a value that encodes back to the same code (the
// decoder picks a value inside each code's interval), except μ-law's
// negative zero, which encodes as positive zero.
func TestG711CodesRoundTrip(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		if got := linearToULaw(ulawToLinear(c)); got != c && c != 0x7F {
			t.Errorf("μ-law %#02x → %d → %#02x", c, ulawToLinear(c), got)
		}
		if got := linearToALaw(alawToLinear(c)); got != c {
			t.Errorf("A-law %#02x → %d → %#02x", c, alawToLinear(c), got)
		}
	}
}

// Quantization error stays within each segment's step.
func TestG711Error(t *testing.T) {
	for s := -32768; s <= 32767; s += 7 {
		for _, l := range []law{ulaw{}, alaw{}} {
			got := l.decode(nil, l.encode(nil, []int16{int16(s)}))[0]
			err := int(got) - s
			if err < 0 {
				err = -err
			}
			limit := max(abs(s)/16, 16) // half a step is ≤ 1/32 of the value, plus the smallest steps
			if err > limit+130 && abs(s) < 32124 {
				t.Fatalf("%T: %d → %d (error %d)", l, s, got, err)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
