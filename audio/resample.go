package audio

import (
	"fmt"
	"math"
	"time"
)

// supportedRates are the sample rates a Resampler converts between.
var supportedRates = [...]int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}

// SupportedRate reports whether NewResampler accepts hz: 8000, 11025, 12000,
// 16000, 22050, 24000, 32000, 44100 or 48000.
func SupportedRate(hz int) bool {
	for _, r := range supportedRates {
		if r == hz {
			return true
		}
	}
	return false
}

// blockSize is how many input samples a Resampler converts to float at a
// time; its working buffer is this plus the filter's history.
const blockSize = 1024

// Resampler converts mono PCM16 from one sample rate to another, in a
// stream of chunks of any size.
//
// It is a rational polyphase FIR resampler: for in→out it interpolates by
// L and decimates by M (L/M = out/in in lowest terms) through one low-pass
// filter, a Kaiser-windowed sinc whose stopband starts at the lower of the
// two Nyquist frequencies and rejects at least 80 dB; the passband is flat
// to within 0.01 dB up to 37.5% of the lower rate (6 kHz at 16 kHz). The
// filter's polyphase tables are computed once per rate pair and shared.
//
// The filter history is kept between calls, so converting a stream in
// chunks gives exactly the samples that converting it in one call would.
// The output is delayed by Delay (linear phase: every frequency by the same
// amount); Flush pushes the tail out at the end of a stream.
//
// A Resampler is not safe for concurrent use; use one per stream. It keeps
// no reference to the slices passed to it.
type Resampler struct {
	in, out int
	f       *polyphase // nil when in == out
	dot     func(h, x []float32) float32
	hist    int       // history kept between blocks: taps-1 samples
	buf     []float32 // hist samples of history, then up to blockSize new ones
	p       int       // phase of the next output
	pos     int       // index in buf of the newest input the next output uses
}

// NewResampler returns a Resampler from inRate to outRate Hz. Both must be
// supported rates (see SupportedRate), except that equal rates of any
// positive value give a Resampler that copies. Otherwise it returns an error
// wrapping ErrUnsupported.
//
// NewResampler is cheap once a rate pair has been used: the filter tables
// are cached for the life of the process (at most about 125 KiB per pair);
// a new Resampler allocates only its own few-KiB working buffer.
func NewResampler(inRate, outRate int) (*Resampler, error) {
	if inRate == outRate && inRate > 0 {
		return &Resampler{in: inRate, out: outRate}, nil
	}
	if !SupportedRate(inRate) || !SupportedRate(outRate) {
		return nil, fmt.Errorf("%w: resampling %d Hz to %d Hz", ErrUnsupported, inRate, outRate)
	}
	g := gcd(inRate, outRate)
	f := filterFor(outRate/g, inRate/g)
	r := &Resampler{
		in: inRate, out: outRate, f: f, dot: bestDot,
		hist: f.taps - 1,
		buf:  make([]float32, f.taps-1+blockSize),
	}
	r.Reset()
	return r, nil
}

// InRate returns the input sample rate in Hz.
func (r *Resampler) InRate() int { return r.in }

// OutRate returns the output sample rate in Hz.
func (r *Resampler) OutRate() int { return r.out }

// Delay returns the group delay of the filter: an input event at time t
// appears in the output at t+Delay. It is zero for equal rates.
func (r *Resampler) Delay() time.Duration {
	if r.f == nil {
		return 0
	}
	return time.Duration(math.Round(r.f.delay / float64(r.in) * float64(time.Second)))
}

// MaxOutput returns the most samples Process can append for n input
// samples, whatever the state: ceil(n*out/in). A dst with that much spare
// capacity makes Process allocation-free.
func (r *Resampler) MaxOutput(n int) int {
	if r.f == nil {
		return n
	}
	return (n*r.f.l + r.f.m - 1) / r.f.m
}

// Reset clears the filter history, as if the Resampler were new.
func (r *Resampler) Reset() {
	if r.f == nil {
		return
	}
	clear(r.buf)
	r.p = 0
	r.pos = r.hist
}

// Process resamples src, the next chunk of the input stream, appends the
// output samples it completes to dst and returns the extended slice. Every
// input sample is consumed; its effect on later output is remembered. It
// does not allocate when dst has MaxOutput(len(src)) spare capacity.
func (r *Resampler) Process(dst, src []int16) []int16 {
	f := r.f
	if f == nil {
		return append(dst, src...)
	}
	if need := len(dst) + r.MaxOutput(len(src)); need > cap(dst) {
		nd := make([]int16, len(dst), need)
		copy(nd, dst)
		dst = nd
	}
	n := len(dst)
	out := dst[:cap(dst)]
	buf, hist, taps, coefs, steps, dot := r.buf, r.hist, f.taps, f.coefs, f.steps, r.dot
	for len(src) > 0 {
		k := min(len(src), blockSize)
		blk := buf[hist : hist+k]
		for i, v := range src[:k] {
			blk[i] = float32(v)
		}
		src = src[k:]
		avail := hist + k
		pos, p := r.pos, r.p
		for pos < avail {
			out[n] = round16(dot(coefs[p*taps:(p+1)*taps], buf[pos-hist:pos+1]))
			n++
			st := steps[p]
			pos += int(st.adv)
			p = int(st.next)
		}
		copy(buf, buf[avail-hist:avail])
		r.pos, r.p = pos-(avail-hist), p
	}
	return out[:n]
}

// zeros feeds Flush.
var zeros [256]int16

// Flush ends the stream: it feeds enough silence to push the last input
// samples through the filter (Delay's worth), appends the resulting output
// to dst, and resets the Resampler for a new stream. For equal rates it
// returns dst unchanged.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.f == nil {
		return dst
	}
	for n := int(math.Ceil(r.f.delay)); n > 0; {
		k := min(n, len(zeros))
		dst = r.Process(dst, zeros[:k])
		n -= k
	}
	r.Reset()
	return dst
}

// dot returns the inner product of h and x; len(x) must be at least
// len(h). It is the portable kernel; bestDot picks a vector one where the
// CPU has it.
func dot(h, x []float32) float32 {
	x = x[:len(h)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(h); i += 4 {
		hh := h[i : i+4 : i+4]
		xx := x[i : i+4 : i+4]
		s0 += hh[0] * xx[0]
		s1 += hh[1] * xx[1]
		s2 += hh[2] * xx[2]
		s3 += hh[3] * xx[3]
	}
	for ; i < len(h); i++ {
		s0 += h[i] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// round16 rounds a sample value to the nearest int16 (ties to even),
// saturating.
func round16(v float32) int16 {
	v = min(max(v, -32768), 32767)
	// Adding 1.5*2^23 leaves the rounded integer in the low mantissa bits.
	return int16(int32(math.Float32bits(v+0x1.8p23) - 0x4B400000))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
