package audio

// G.711 (ITU-T Recommendation G.711) companding: μ-law, used on North
// American and Japanese networks (RTP payload type 0, PCMU), and A-law, used
// elsewhere (payload type 8, PCMA). Each 8-bit code stands for one 16-bit
// sample at 8 kHz. Both directions are table lookups; the tables are built
// once at package initialisation from the segment rules of the
// Recommendation.

// Both laws invert some bits of every code so that a line carrying silence
// has transitions: μ-law inverts all eight, A-law every even bit.
const (
	ulawBias = 0x84  // 132: added before the segment search, in 16-bit units
	ulawClip = 32636 // 8159 in 14 bits
	alawXOR  = 0x55
)

var (
	ulawToLinear [256]int16
	alawToLinear [256]int16
	// sample → code, indexed by the sample as a uint16.
	linearToULaw [1 << 16]uint8
	linearToALaw [1 << 16]uint8
)

func init() {
	for i := range 256 {
		ulawToLinear[i] = ulawDecode(uint8(i))
		alawToLinear[i] = alawDecode(uint8(i))
	}
	for i := range 1 << 16 {
		s := int32(int16(uint16(i)))
		// The laws quantize 14-bit (μ) and 13-bit (A) samples: round to
		// the nearest, as sox does.
		linearToULaw[i] = ulawEncode(min((s+2)>>2, 1<<13-1))
		linearToALaw[i] = alawEncode(min((s+4)>>3, 1<<12-1))
	}
}

// ulawDecode expands one μ-law code (G.711 table 2).
func ulawDecode(c uint8) int16 {
	c = ^c
	mag := (int32(c&0x0F)<<3 + ulawBias) << ((c & 0x70) >> 4)
	if c&0x80 != 0 {
		return int16(ulawBias - mag)
	}
	return int16(mag - ulawBias)
}

// ulawEncode compresses one 14-bit sample to μ-law: bias the magnitude,
// find its segment (the position of its highest set bit) and keep the four
// bits below it.
func ulawEncode(v int32) uint8 {
	sign := uint8(0)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, ulawClip>>2) + ulawBias>>2
	seg := uint8(0)
	for x := v >> 6; x > 0; x >>= 1 {
		seg++
	}
	if seg > 7 {
		return ^(sign | 0x7F)
	}
	return ^(sign | seg<<4 | uint8(v>>(seg+1))&0x0F)
}

// alawDecode expands one A-law code (G.711 table 1).
func alawDecode(c uint8) int16 {
	c ^= alawXOR
	mag := int32(c&0x0F)<<4 + 8
	if seg := (c & 0x70) >> 4; seg > 0 {
		mag = (mag + 0x100) << (seg - 1)
	}
	if c&0x80 != 0 {
		return int16(mag)
	}
	return int16(-mag)
}

// alawEncode compresses one 13-bit sample to A-law: segments 0 and 1 are
// linear, each further segment doubles the step.
func alawEncode(v int32) uint8 {
	sign := uint8(0x80)
	if v < 0 {
		v, sign = -v-1, 0 // the codes of negative values are one step down
	}
	seg := uint8(0)
	for x := v >> 5; x > 0; x >>= 1 {
		seg++
	}
	if seg > 7 {
		return (sign | 0x7F) ^ alawXOR
	}
	var mant uint8
	if seg < 2 {
		mant = uint8(v>>1) & 0x0F
	} else {
		mant = uint8(v>>seg) & 0x0F
	}
	return (sign | seg<<4 | mant) ^ alawXOR
}

// EncodeULaw appends the μ-law codes of pcm to dst and returns it.
func EncodeULaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, linearToULaw[uint16(s)])
	}
	return dst
}

// DecodeULaw appends the samples of the μ-law codes b to dst and returns it.
func DecodeULaw(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, ulawToLinear[c])
	}
	return dst
}

// EncodeALaw appends the A-law codes of pcm to dst and returns it.
func EncodeALaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, linearToALaw[uint16(s)])
	}
	return dst
}

// DecodeALaw appends the samples of the A-law codes b to dst and returns it.
func DecodeALaw(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, alawToLinear[c])
	}
	return dst
}
