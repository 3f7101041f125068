package audio

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// tone returns n samples of amp*sin(2π f t + phase) at rate, rounded to PCM16.
func tone(rate int, f, amp, phase float64, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = saturate(amp * math.Sin(2*math.Pi*f*float64(i)/float64(rate)+phase))
	}
	return s
}

// bin returns the complex amplitude of frequency f in x (a single DFT bin,
// Goertzel-style direct sum): for x = A sin(2π f t + φ) over a whole number
// of periods it is A e^{i(φ-π/2)}.
func bin(x []int16, rate int, f float64) complex128 {
	var re, im float64
	w := 2 * math.Pi * f / float64(rate)
	for n, v := range x {
		s, c := math.Sincos(w * float64(n))
		re += float64(v) * c
		im -= float64(v) * s
	}
	return complex(re, im) * complex(2/float64(len(x)), 0)
}

// power returns the mean square of x.
func power(x []int16) float64 {
	var p float64
	for _, v := range x {
		p += float64(v) * float64(v)
	}
	return p / float64(len(x))
}

// db returns an amplitude relative to PCM16 full scale in dB.
func db(amp float64) float64 { return 20 * math.Log10(amp/32768) }

// steady resamples a signal made by gen (called with the input length) and
// returns one second of output (rate samples, so that every whole-Hz
// frequency falls on a DFT bin) taken after the filter has settled.
func steady(t *testing.T, in, out int, gen func(n int) []int16) []int16 {
	t.Helper()
	r, err := NewResampler(in, out)
	if err != nil {
		t.Fatal(err)
	}
	warm := int(math.Ceil(2*r.Delay().Seconds()*float64(out))) + 2
	n := (warm+out)*in/out + in/10
	y := r.Process(nil, gen(n))
	if len(y) < warm+out {
		t.Fatalf("%d->%d: %d output samples, want at least %d", in, out, len(y), warm+out)
	}
	return y[warm : warm+out]
}

func allPairs() [][2]int {
	var p [][2]int
	for _, a := range supportedRates {
		for _, b := range supportedRates {
			if a != b {
				p = append(p, [2]int{a, b})
			}
		}
	}
	return p
}

// TestResamplePassband checks, for every rate pair, that a 1 kHz tone keeps
// its amplitude within 0.1 dB and its frequency, and that everything else in
// the output (images, aliases, noise) is at least 80 dB below full scale.
func TestResamplePassband(t *testing.T) {
	t.Parallel()
	for _, pr := range allPairs() {
		in, out := pr[0], pr[1]
		t.Run(fmt.Sprintf("%d-%d", in, out), func(t *testing.T) {
			t.Parallel()
			const f, amp = 1000.0, 16384.0
			y := steady(t, in, out, func(n int) []int16 { return tone(in, f, amp, 0, n) })
			a := cmplx.Abs(bin(y, out, f))
			gain := 20 * math.Log10(a/amp)
			rest := math.Sqrt(2 * max(0, power(y)-a*a/2)) // as a sine amplitude
			t.Logf("gain %+.4f dB, residual %.1f dBFS", gain, db(rest))
			if math.Abs(gain) > 0.1 {
				t.Errorf("1 kHz gain %+.3f dB, want within ±0.1 dB", gain)
			}
			if db(rest) > -80 {
				t.Errorf("energy outside 1 kHz at %.1f dBFS, want <= -80", db(rest))
			}
		})
	}
}

// TestResampleStopband checks, for every downsampling pair, that full-scale
// tones between the output and input Nyquist frequencies come out at least
// 80 dB below full scale.
func TestResampleStopband(t *testing.T) {
	t.Parallel()
	for _, pr := range allPairs() {
		in, out := pr[0], pr[1]
		if out > in {
			continue
		}
		for _, frac := range []float64{0.01, 0.2, 0.5, 0.8, 0.99} {
			f := math.Round(float64(out)/2 + frac*float64(in-out)/2)
			t.Run(fmt.Sprintf("%d-%d/%gHz", in, out, f), func(t *testing.T) {
				t.Parallel()
				y := steady(t, in, out, func(n int) []int16 { return tone(in, f, 32767, 0.3, n) })
				alias := math.Mod(f, float64(out))
				if alias > float64(out)/2 {
					alias = float64(out) - alias
				}
				a := cmplx.Abs(bin(y, out, alias))
				total := math.Sqrt(2 * power(y))
				t.Logf("alias at %g Hz: %.1f dBFS, total %.1f dBFS", alias, db(a), db(total))
				if db(a) > -80 || db(total) > -80 {
					t.Errorf("alias %.1f dBFS, total output %.1f dBFS, want <= -80", db(a), db(total))
				}
			})
		}
	}
}

// TestResampleNamedCases pins the cases of the package contract with
// Goertzel measurements at the frequencies where the artefacts land.
func TestResampleNamedCases(t *testing.T) {
	t.Parallel()
	t.Run("48k-16k alias of 10kHz", func(t *testing.T) {
		y := steady(t, 48000, 16000, func(n int) []int16 { return tone(48000, 10000, 32767, 0, n) })
		if a := db(cmplx.Abs(bin(y, 16000, 6000))); a > -80 {
			t.Errorf("6 kHz alias at %.1f dBFS", a)
		}
	})
	t.Run("44.1k-16k alias of 10kHz", func(t *testing.T) {
		y := steady(t, 44100, 16000, func(n int) []int16 { return tone(44100, 10000, 32767, 0, n) })
		if a := db(cmplx.Abs(bin(y, 16000, 6000))); a > -80 {
			t.Errorf("6 kHz alias at %.1f dBFS", a)
		}
	})
	for _, f := range []float64{1000, 5000} {
		t.Run(fmt.Sprintf("16k-48k images of %gHz", f), func(t *testing.T) {
			y := steady(t, 16000, 48000, func(n int) []int16 { return tone(16000, f, 32000, 0, n) })
			sig := cmplx.Abs(bin(y, 48000, f))
			for _, img := range []float64{16000 - f, 16000 + f, 32000 - f} {
				a := cmplx.Abs(bin(y, 48000, img))
				if rel := 20 * math.Log10(a/sig); rel > -80 {
					t.Errorf("image at %g Hz only %.1f dB below the tone", img, rel)
				}
			}
		})
	}
}

// TestResampleDelay checks Delay against the phase of a passband tone: the
// output must be the input tone delayed by Delay.
func TestResampleDelay(t *testing.T) {
	t.Parallel()
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 16000}, {8000, 22050}, {24000, 16000}} {
		in, out := pr[0], pr[1]
		const f = 500.0
		r, err := NewResampler(in, out)
		if err != nil {
			t.Fatal(err)
		}
		y := steady(t, in, out, func(n int) []int16 { return tone(in, f, 20000, 0, n) })
		warm := int(math.Ceil(2*r.Delay().Seconds()*float64(out))) + 2
		// y[0] is output sample warm, at time warm/out; the input phase
		// there, delayed by Delay, is 2π f (warm/out - Delay).
		want := 2*math.Pi*f*(float64(warm)/float64(out)-r.Delay().Seconds()) - math.Pi/2
		got := cmplx.Phase(bin(y, out, f))
		diff := math.Remainder(got-want, 2*math.Pi)
		if dt := diff / (2 * math.Pi * f); math.Abs(dt) > 2e-6 {
			t.Errorf("%d->%d: output is %.2f µs off the reported delay %v", in, out, dt*1e6, r.Delay())
		}
	}
}

// TestResampleChunked checks that converting a stream in random chunks,
// including empty, single-sample and larger-than-block ones, gives exactly
// the one-shot result, also across Flush.
func TestResampleChunked(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	sig := make([]int16, 30000)
	for i := range sig {
		sig[i] = int16(rng.IntN(40000)-20000) / 2
	}
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 16000}, {16000, 24000}, {16000, 8000}, {22050, 44100}, {8000, 48000}, {16000, 16000}} {
		in, out := pr[0], pr[1]
		one, _ := NewResampler(in, out)
		want := one.Process(nil, sig)
		if got, max := len(want), one.MaxOutput(len(sig)); got != max {
			t.Errorf("%d->%d: one-shot gave %d samples, MaxOutput says %d", in, out, got, max)
		}
		want = one.Flush(want)

		r, _ := NewResampler(in, out)
		for trial := range 3 {
			var got []int16
			rest := sig
			for len(rest) > 0 {
				var k int
				switch rng.IntN(6) {
				case 0:
					k = 0
				case 1:
					k = 1
				case 2:
					k = blockSize + rng.IntN(3000)
				default:
					k = rng.IntN(700)
				}
				k = min(k, len(rest))
				got = r.Process(got, rest[:k])
				rest = rest[k:]
			}
			got = r.Flush(got)
			if !slices.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Fatalf("%d->%d trial %d: chunked output differs from one-shot at sample %d (lengths %d, %d)", in, out, trial, i, len(got), len(want))
			}
			// Flush reset r, so the next trial starts a fresh stream.
		}
	}
}

// TestResampleReset checks that Reset forgets the history.
func TestResampleReset(t *testing.T) {
	t.Parallel()
	x := tone(44100, 440, 10000, 0, 5000)
	fresh, _ := NewResampler(44100, 16000)
	want := fresh.Process(nil, x)

	r, _ := NewResampler(44100, 16000)
	r.Process(nil, tone(44100, 3000, 30000, 1, 1234))
	r.Reset()
	if got := r.Process(nil, x); !slices.Equal(got, want) {
		t.Error("output after Reset differs from a fresh Resampler's")
	}
}

// TestResampleDC checks that a constant comes out exactly constant on every
// polyphase phase, and that the filter saturates rather than wraps on
// full-scale square waves.
func TestResampleDC(t *testing.T) {
	t.Parallel()
	for _, pr := range allPairs() {
		in, out := pr[0], pr[1]
		r, _ := NewResampler(in, out)
		x := make([]int16, 3*in/10)
		for i := range x {
			x[i] = 12345
		}
		y := r.Process(nil, x)
		warm := int(math.Ceil(2*r.Delay().Seconds()*float64(out))) + 2
		for i, v := range y[warm:] {
			if v != 12345 {
				t.Fatalf("%d->%d: constant 12345 became %d at output %d", in, out, v, warm+i)
			}
		}
	}
}

func TestResampleSaturates(t *testing.T) {
	t.Parallel()
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 8000}} {
		in, out := pr[0], pr[1]
		r, _ := NewResampler(in, out)
		const period = 400 // input samples
		x := make([]int16, 20*period)
		for i := range x {
			x[i] = 32767
			if i/(period/2)%2 == 1 {
				x[i] = -32768
			}
		}
		y := r.Process(nil, x)
		delay := r.Delay().Seconds() * float64(in)
		sawMax := false
		for n, v := range y {
			at := float64(n)*float64(in)/float64(out) - delay // input time of output n
			if at < 0 {
				continue
			}
			ph := math.Mod(at, period/2)
			if ph < 40 || ph > period/2-40 {
				continue // near an edge: ringing
			}
			positive := int(at/(period/2))%2 == 0
			if positive && v < 30000 || !positive && v > -30000 {
				t.Fatalf("%d->%d: output %d is %d inside a half-period of sign %v", in, out, n, v, positive)
			}
			sawMax = sawMax || v == 32767
		}
		if !sawMax {
			t.Errorf("%d->%d: a full-scale square wave never reached 32767", in, out)
		}
	}
}

func TestNewResamplerErrors(t *testing.T) {
	t.Parallel()
	for _, pr := range [][2]int{{16000, 11000}, {7000, 16000}, {0, 16000}, {16000, -1}, {0, 0}, {-8000, -8000}} {
		if _, err := NewResampler(pr[0], pr[1]); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewResampler(%d, %d) error %v, want ErrUnsupported", pr[0], pr[1], err)
		}
	}
}

func TestResampleIdentity(t *testing.T) {
	t.Parallel()
	for _, rate := range []int{16000, 7000} {
		r, err := NewResampler(rate, rate)
		if err != nil {
			t.Fatal(err)
		}
		x := []int16{1, -2, 3, 32767, -32768}
		got := r.Process([]int16{9}, x)
		if !slices.Equal(got, append([]int16{9}, x...)) {
			t.Errorf("identity %d Hz: got %v", rate, got)
		}
		if r.Delay() != 0 || len(r.Flush(nil)) != 0 || r.MaxOutput(5) != 5 {
			t.Errorf("identity %d Hz: delay %v, flush or MaxOutput wrong", rate, r.Delay())
		}
	}
}

func TestResampleNoAlloc(t *testing.T) {
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 16000}} {
		r, _ := NewResampler(pr[0], pr[1])
		x := tone(pr[0], 1000, 10000, 0, pr[0]/50)
		dst := make([]int16, 0, r.MaxOutput(len(x)))
		allocs := testing.AllocsPerRun(50, func() {
			dst = r.Process(dst[:0], x)
		})
		if allocs != 0 {
			t.Errorf("%d->%d: Process allocated %.1f times per call", pr[0], pr[1], allocs)
		}
	}
}

// TestResamplerConcurrentNew builds the same and different rate pairs from
// many goroutines (the table cache is shared) and checks every Resampler
// of a pair computes the same output.
func TestResamplerConcurrentNew(t *testing.T) {
	t.Parallel()
	x := tone(32000, 700, 10000, 0, 2000)
	var wg sync.WaitGroup
	outs := make([][]int16, 16)
	for i := range outs {
		wg.Go(func() {
			out := 12000
			if i%2 == 1 {
				out = 11025
			}
			r, err := NewResampler(32000, out)
			if err != nil {
				t.Error(err)
				return
			}
			outs[i] = r.Process(nil, x)
		})
	}
	wg.Wait()
	for i := 2; i < len(outs); i++ {
		if !slices.Equal(outs[i], outs[i%2]) {
			t.Errorf("goroutine %d got a different output from goroutine %d", i, i%2)
		}
	}
}

func BenchmarkResample(b *testing.B) {
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 16000}, {16000, 24000}, {16000, 8000}} {
		in, out := pr[0], pr[1]
		b.Run(fmt.Sprintf("%d-%d", in, out), func(b *testing.B) {
			r, err := NewResampler(in, out)
			if err != nil {
				b.Fatal(err)
			}
			chunk := tone(in, 440, 10000, 0, in/50) // 20 ms
			dst := make([]int16, 0, r.MaxOutput(len(chunk)))
			b.SetBytes(int64(2 * len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				dst = r.Process(dst[:0], chunk)
			}
		})
	}
}

func BenchmarkNewResampler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewResampler(44100, 16000); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDotKernels checks the vector kernel against the portable one.
func TestDotKernels(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 8; n <= 400; n += 8 {
		h := make([]float32, n)
		x := make([]float32, n+5)
		var mag float64
		for i := range h {
			h[i] = rng.Float32()*2 - 1
			x[i] = float32(rng.IntN(65536) - 32768)
			mag += math.Abs(float64(h[i] * x[i]))
		}
		a, b := float64(dot(h, x)), float64(bestDot(h, x))
		if math.Abs(a-b) > 1e-5*mag {
			t.Errorf("n=%d: portable %g, vector %g", n, a, b)
		}
	}
}

// TestResamplePortableKernel checks that the portable kernel (used where
// the CPU has no vector one) gives the same output as the vector kernel
// to within one LSB.
func TestResamplePortableKernel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	sig := make([]int16, 20000)
	for i := range sig {
		sig[i] = int16(rng.IntN(60000) - 30000)
	}
	for _, pr := range [][2]int{{48000, 16000}, {16000, 48000}, {44100, 16000}, {8000, 22050}} {
		a, _ := NewResampler(pr[0], pr[1])
		b, _ := NewResampler(pr[0], pr[1])
		b.dot = dot
		ya, yb := a.Process(nil, sig), b.Process(nil, sig)
		if len(ya) != len(yb) {
			t.Fatalf("%v: lengths %d and %d", pr, len(ya), len(yb))
		}
		for i := range ya {
			if d := int(ya[i]) - int(yb[i]); d > 1 || d < -1 {
				t.Fatalf("%v: sample %d: vector %d, portable %d", pr, i, ya[i], yb[i])
			}
		}
	}
}
