package carrier

// G.711 (ITU-T Recommendation G.711) companding for the carriers that send
// 8-bit telephone audio: μ-law (PCMU) and A-law (PCMA). Decoding is a table
// lookup; encoding follows the segment search of the Recommendation.
//
// This is the package's own copy so that the edge does not wait on
// audio/g711.go (being added with the SIP edge); the law interface is all
// the serializers use, so swapping in the audio package's functions is a
// one-line change per law.

// law is one G.711 companding law.
type law interface {
	// decode appends the samples of the codes b to dst.
	decode(dst []int16, b []byte) []int16
	// encode appends the codes of pcm to dst.
	encode(dst []byte, pcm []int16) []byte
}

type ulaw struct{}
type alaw struct{}

var ulawTable, alawTable [256]int16

func init() {
	for i := range 256 {
		ulawTable[i] = ulawToLinear(byte(i))
		alawTable[i] = alawToLinear(byte(i))
	}
}

func (ulaw) decode(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, ulawTable[c])
	}
	return dst
}

func (ulaw) encode(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, linearToULaw(s))
	}
	return dst
}

func (alaw) decode(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, alawTable[c])
	}
	return dst
}

func (alaw) encode(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, linearToALaw(s))
	}
	return dst
}

const (
	ulawBias = 0x84 // added to the magnitude so that every segment has a leading 1
	ulawClip = 32635
)

// segment returns the position of the highest set bit of v above bit 7
// (0 for v < 256), which is the G.711 segment number of a biased μ-law
// magnitude.
func segment(v int) int {
	seg := 0
	for v >>= 8; v != 0 && seg < 7; v >>= 1 {
		seg++
	}
	return seg
}

func linearToULaw(s int16) byte {
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, ulawClip) + ulawBias
	seg := segment(v)
	mant := (v >> (seg + 3)) & 0x0F
	return ^byte(sign | seg<<4 | mant)
}

func ulawToLinear(c byte) int16 {
	c = ^c
	seg := int(c>>4) & 7
	v := ((int(c&0x0F) << 3) + ulawBias) << seg
	v -= ulawBias
	if c&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

func linearToALaw(s int16) byte {
	v := int(s) >> 3 // A-law works on 13-bit magnitudes
	sign := 0x80
	if v < 0 {
		v, sign = -v-1, 0
	}
	var c int
	if v < 32 {
		c = v >> 1
	} else {
		seg := 1
		for x := v >> 5; x > 1 && seg < 7; x >>= 1 {
			seg++
		}
		if v > 0xFFF {
			v, seg = 0xFFF, 7
		}
		c = seg<<4 | (v>>seg)&0x0F
	}
	return byte(sign|c) ^ 0x55
}

func alawToLinear(c byte) int16 {
	c ^= 0x55
	seg := int(c>>4) & 7
	mant := int(c & 0x0F)
	var v int
	if seg == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (seg - 1)
	}
	if c&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}
