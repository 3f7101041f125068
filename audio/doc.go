// Package audio holds the media helpers of voiced: PCM16 conversions and
// levels, G.711, G.722, WAV files and a band-limited streaming resampler.
//
// G.711 μ-law and A-law (EncodeULaw, DecodeALaw, …) are table lookups that
// match the ITU reference code and sox bit for bit. G.722 (G722Encoder,
// G722Decoder) is the Recommendation's sub-band ADPCM at 64 kbit/s in its
// fixed-point arithmetic; it matches FFmpeg's codec bit for bit in both
// directions. Its encoder and decoder keep state: use one per stream.
//
// Audio in voiced is interleaved signed 16-bit PCM ([]int16) described by a
// frame.Format. Functions that produce samples or bytes are append-style:
// they append to dst and return the extended slice, so a caller that passes
// a dst with enough capacity gets no allocation. Functions never retain the
// slices they are given.
//
// The free functions of this package are safe for concurrent use. A
// Resampler keeps filter state and is not: use one per stream.
package audio

import "errors"

var (
	// ErrOddLength is returned when a PCM16 byte buffer has an odd length.
	ErrOddLength = errors.New("audio: odd PCM16 byte length")
	// ErrNotWAV is returned when the input is not a RIFF/WAVE file.
	ErrNotWAV = errors.New("audio: not a WAV file")
	// ErrUnsupported is returned (wrapped with details) for well-formed
	// input that this package does not handle: a WAV encoding other than
	// 16-bit PCM, or a resampling rate outside the supported set.
	ErrUnsupported = errors.New("audio: unsupported")
	// ErrTooLarge is returned when a WAV file exceeds MaxWAVDataBytes or a
	// header field exceeds its sanity limit.
	ErrTooLarge = errors.New("audio: too large")
	// ErrInvalidFormat is returned when a frame.Format or a sample buffer
	// given to a writer is not valid (non-positive rate or channel count,
	// or a sample count that is not a whole number of frames).
	ErrInvalidFormat = errors.New("audio: invalid format")
)
