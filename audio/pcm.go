package audio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodePCM16 appends the little-endian PCM16 samples held in b to dst and
// returns the extended slice. It returns dst unchanged and an error wrapping
// ErrOddLength if len(b) is odd. It does not allocate when dst has capacity
// for len(b)/2 more samples.
func DecodePCM16(dst []int16, b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return dst, fmt.Errorf("%w: %d bytes", ErrOddLength, len(b))
	}
	n := len(b) / 2
	dst, out := grow(dst, n)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return dst, nil
}

// EncodePCM16 appends s to dst as little-endian PCM16 bytes and returns the
// extended slice. It does not allocate when dst has capacity for 2*len(s)
// more bytes.
func EncodePCM16(dst []byte, s []int16) []byte {
	dst, out := growBytes(dst, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return dst
}

// ToFloat32 appends s to dst scaled to [-1, 1) (v/32768) and returns the
// extended slice.
func ToFloat32(dst []float32, s []int16) []float32 {
	if n := len(dst) + len(s); n > cap(dst) {
		nd := make([]float32, len(dst), n)
		copy(nd, dst)
		dst = nd
	}
	for _, v := range s {
		dst = append(dst, float32(v)*(1.0/32768))
	}
	return dst
}

// FromFloat32 appends f to dst as PCM16 (v*32768 rounded to nearest) and
// returns the extended slice. Values outside [-1, 1) saturate; NaN becomes 0.
func FromFloat32(dst []int16, f []float32) []int16 {
	dst, out := grow(dst, len(f))
	for i, v := range f {
		out[i] = saturate(float64(v) * 32768)
	}
	return dst
}

// RMS returns the root-mean-square level of s relative to full scale
// (32768), in [0, 1]. It returns 0 for an empty s.
func RMS(s []int16) float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		x := float64(v)
		sum += x * x
	}
	return math.Sqrt(sum/float64(len(s))) / 32768
}

// DBFS returns the RMS level of s in dB relative to full scale:
// 20*log10(RMS(s)). A full-scale square wave is 0 dBFS and a full-scale sine
// about -3.01 dBFS. Silence (or an empty s) is math.Inf(-1).
func DBFS(s []int16) float64 {
	return 20 * math.Log10(RMS(s))
}

// Downmix appends the average of each frame of channels interleaved samples
// of src to dst (stereo to mono when channels is 2) and returns the extended
// slice. A trailing partial frame is ignored. With channels <= 1, src is
// copied. Downmix(src[:0], src, 2) works in place.
func Downmix(dst, src []int16, channels int) []int16 {
	if channels <= 1 {
		return append(dst, src...)
	}
	n := len(src) / channels
	if channels == 2 {
		for i := range n {
			dst = append(dst, int16((int32(src[2*i])+int32(src[2*i+1]))/2))
		}
		return dst
	}
	for i := range n {
		var sum int32
		for _, v := range src[i*channels : (i+1)*channels] {
			sum += int32(v)
		}
		dst = append(dst, int16(sum/int32(channels)))
	}
	return dst
}

// Gain appends src multiplied by the linear factor g to dst and returns the
// extended slice; results saturate at the int16 range. Gain(s[:0], s, g)
// works in place. DBToGain converts a gain in dB.
func Gain(dst, src []int16, g float64) []int16 {
	for _, v := range src {
		dst = append(dst, saturate(float64(v)*g))
	}
	return dst
}

// DBToGain returns the linear factor of a gain of db decibels.
func DBToGain(db float64) float64 { return math.Pow(10, db/20) }

// saturate rounds x to the nearest int16, clamping out-of-range values.
// NaN becomes 0.
func saturate(x float64) int16 {
	switch {
	case x >= 32767:
		return 32767
	case x <= -32768:
		return -32768
	case x != x: // NaN
		return 0
	}
	return int16(math.RoundToEven(x))
}

// grow extends dst by n elements and returns it with the new tail.
func grow(dst []int16, n int) ([]int16, []int16) {
	l := len(dst)
	if l+n > cap(dst) {
		nd := make([]int16, l+n, max(l+n, 2*cap(dst)))
		copy(nd, dst)
		dst = nd
	} else {
		dst = dst[:l+n]
	}
	return dst, dst[l:]
}

func growBytes(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	if l+n > cap(dst) {
		nd := make([]byte, l+n, max(l+n, 2*cap(dst)))
		copy(nd, dst)
		dst = nd
	} else {
		dst = dst[:l+n]
	}
	return dst, dst[l:]
}
