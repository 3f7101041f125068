package audio

import (
	"math"
	"sync"
)

// Filter design constants of the resampler's anti-alias/anti-image filter.
const (
	// stopbandDB is the design attenuation. The Kaiser estimate is a little
	// optimistic near the band edge and the coefficients are float32, so the
	// design aims 10 dB above the 80 dB the package promises.
	stopbandDB = 90
	// transition is the width of the transition band as a fraction of the
	// lower of the two rates: the passband ends at (0.5-transition)*min and
	// the stopband starts at the lower Nyquist frequency, 0.5*min.
	transition = 0.125
)

// polyphase is the precomputed filter of one L/M ratio. It is immutable
// once built and shared by every Resampler of that ratio.
type polyphase struct {
	l, m  int // interpolation and decimation factors (coprime)
	taps  int // taps per phase, in input samples (a multiple of 8)
	coefs []float32
	// steps[p] leads from the output that uses phase p to the next one.
	steps []step
	delay float64 // group delay in input samples
}

// phase returns the taps of phase p, time-reversed so that they line up
// with input samples in chronological order.
func (f *polyphase) phase(p int) []float32 {
	return f.coefs[p*f.taps : (p+1)*f.taps]
}

// step is the move from one output to the next: its phase, and how many
// input samples later its newest input is.
type step struct{ next, adv int32 }

type ratio struct{ l, m int }

var (
	filterMu    sync.Mutex
	filterCache = map[ratio]*polyphase{}
)

// filterFor returns the shared filter of ratio l/m, designing it on first
// use. It is safe for concurrent use.
func filterFor(l, m int) *polyphase {
	filterMu.Lock()
	defer filterMu.Unlock()
	k := ratio{l, m}
	if f, ok := filterCache[k]; ok {
		return f
	}
	f := design(l, m)
	filterCache[k] = f
	return f
}

// design builds the polyphase decomposition of a Kaiser-windowed sinc
// low-pass running at l times the input rate, for resampling by l/m.
//
// Frequencies below are in cycles per input sample. The lower rate is
// min(l, m)/m of the input rate; the stopband starts at half of it and the
// transition band is transition times it wide. Kaiser's estimate gives the
// length for stopbandDB of attenuation across that band; the prototype is
// l*taps long so that each of the l phases has taps coefficients.
func design(l, m int) *polyphase {
	low := float64(min(l, m)) / float64(m) // lower rate / input rate
	width := transition * low
	fc := (0.5 - transition/2) * low // centre of the transition band

	beta := 0.1102 * (stopbandDB - 8.7)
	taps := int(math.Ceil((stopbandDB-7.95)/(14.36*width))) + 1
	n := l * taps
	// Each phase is stored padded with leading zeros (for the oldest input
	// samples) to a multiple of 8 taps, the width of the vector kernel.
	padded := (taps + 7) &^ 7
	centre := float64(n-1) / 2
	i0beta := besselI0(beta)

	proto := make([]float64, n)
	for i := range proto {
		t := (float64(i) - centre) / float64(l) // in input samples
		x := 2 * float64(i) / float64(n-1)
		w := besselI0(beta*math.Sqrt(max(0, 1-(x-1)*(x-1)))) / i0beta
		proto[i] = 2 * fc * sinc(2*fc*t) * w
	}

	f := &polyphase{
		l: l, m: m, taps: padded,
		coefs: make([]float32, l*padded),
		steps: make([]step, l),
		delay: centre / float64(l),
	}
	for p := range l {
		// Normalise every phase to unity DC gain so a constant input
		// gives a constant output whatever the phase.
		var sum float64
		for j := range taps {
			sum += proto[p+j*l]
		}
		dst := f.phase(p)
		for j := range taps {
			dst[padded-1-j] = float32(proto[p+j*l] / sum)
		}
		f.steps[p] = step{next: int32((p + m) % l), adv: int32((p + m) / l)}
	}
	return f
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges quickly for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}
