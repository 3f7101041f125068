package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// voicedTone is a vowel-like signal: a 140 Hz fundamental with falling
// harmonics, its pitch drifting slowly, as voiced speech does.
func voicedTone(rate, n int) []int16 {
	out := make([]int16, n)
	var ph float64
	for i := range out {
		f := 140 + 10*math.Sin(2*math.Pi*float64(i)/float64(rate)) // ±10 Hz over a second
		ph += 2 * math.Pi * f / float64(rate)
		v := 0.0
		for h := 1; h <= 5; h++ {
			v += math.Sin(float64(h)*ph) / float64(h)
		}
		out[i] = int16(6000 * v)
	}
	return out
}

// lossy runs pcm through p in packets of 20 ms, losing the packets lost
// says, and returns what came out.
func lossy(p *PLC, pcm []int16, rate int, lost func(k int) bool) []int16 {
	n := rate / 50
	var out []int16
	for k := 0; (k+1)*n <= len(pcm); k++ {
		if lost(k) {
			out = p.Conceal(out, n)
			continue
		}
		pkt := append([]int16(nil), pcm[k*n:(k+1)*n]...)
		out = append(out, p.Good(pkt)...)
	}
	return out
}

// spanSNR is the signal-to-error ratio (dB) of got against want over [from, to).
func spanSNR(want, got []int16, from, to int) float64 {
	var s, e float64
	for i := from; i < to; i++ {
		d := float64(want[i]) - float64(got[i])
		s += float64(want[i]) * float64(want[i])
		e += d * d
	}
	if e == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/e)
}

// maxStep is the largest change between neighbouring samples in s[from:to].
func maxStep(s []int16, from, to int) int {
	m := 0
	for i := max(from, 1); i < to && i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		m = max(m, d, -d)
	}
	return m
}

// TestPLCConcealsVoicedAudio loses every fifth 20 ms packet of a voiced
// signal: the concealment's first 10 ms must be close to what was lost
// (silence, the old behaviour, scores 0 dB), and neither edge of a loss may
// step further than the signal itself ever does.
func TestPLCConcealsVoicedAudio(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		pcm := voicedTone(rate, 2*rate)
		n := rate / 50
		lost := func(k int) bool { return k > 2 && k%5 == 3 }
		out := lossy(NewPLC(rate), pcm, rate, lost)
		if len(out) != len(pcm) {
			t.Fatalf("%d Hz: %d samples out for %d in", rate, len(out), len(pcm))
		}
		own := maxStep(pcm, 0, len(pcm))
		for k := 0; (k+1)*n <= len(pcm); k++ {
			if !lost(k) {
				continue
			}
			at := k * n
			if got := spanSNR(pcm, out, at, at+n/2); got < 10 {
				t.Errorf("%d Hz, packet %d: first 10 ms concealed at %.1f dB SNR, want ≥ 10", rate, k, got)
			}
			// Edges: the last sample heard → the first made, and the last made
			// → the first heard after the loss.
			if s := maxStep(out, at-1, at+2); s > own*3/2 {
				t.Errorf("%d Hz, packet %d: step %d into the loss, the signal's own largest is %d", rate, k, s, own)
			}
			if s := maxStep(out, at+n-1, at+n+2); s > own*3/2 {
				t.Errorf("%d Hz, packet %d: step %d out of the loss, the signal's own largest is %d", rate, k, s, own)
			}
		}
		// Outside the losses, the audio is untouched but for the cross-fade
		// at the start of the packet after each.
		for k := 0; (k+1)*n <= len(pcm); k++ {
			if lost(k) || (k > 0 && lost(k-1)) {
				continue
			}
			for i := k * n; i < (k+1)*n; i++ {
				if out[i] != pcm[i] {
					t.Fatalf("%d Hz: packet %d changed at sample %d", rate, k, i)
				}
			}
		}
	}
}

// TestPLCFadesToSilence loses 120 ms: the concealment carries on at full
// level for 10 ms, fades, and is silent from 60 ms on; the audio after the
// loss comes back as it was sent.
func TestPLCFadesToSilence(t *testing.T) {
	const rate = 8000
	pcm := voicedTone(rate, rate)
	n := rate / 50
	lost := func(k int) bool { return k >= 10 && k < 16 }
	out := lossy(NewPLC(rate), pcm, rate, lost)
	at := 10 * n
	var early float64
	for i := at; i < at+rate/100; i++ {
		early = max(early, math.Abs(float64(out[i])))
	}
	if early < 3000 {
		t.Errorf("first 10 ms of the loss peak at %.0f: not carried on at full level", early)
	}
	for i := at + 60*rate/1000; i < 16*n; i++ {
		if out[i] != 0 {
			t.Fatalf("sample %d ms into the loss is %d, want silence after 60 ms", (i-at)*1000/rate, out[i])
		}
	}
	for i := 16 * n; i < len(pcm); i++ {
		if out[i] != pcm[i] {
			t.Fatalf("sample %d after a loss faded out is %d, want %d as sent", i, out[i], pcm[i])
		}
	}
}

// TestPLCWithLittleHistory loses the first packets of a call: there is
// nothing to repeat, so they are silence, and what follows is unharmed.
func TestPLCWithLittleHistory(t *testing.T) {
	const rate = 8000
	pcm := voicedTone(rate, rate/2)
	n := rate / 50
	out := lossy(NewPLC(rate), pcm, rate, func(k int) bool { return k < 2 })
	for i := range 2 * n {
		if out[i] != 0 {
			t.Fatalf("sample %d concealed as %d with nothing heard, want 0", i, out[i])
		}
	}
	for i := 2 * n; i < len(out); i++ {
		if out[i] != pcm[i] {
			t.Fatalf("sample %d is %d, want %d", i, out[i], pcm[i])
		}
	}
}

// TestPLCRandomUse drives a PLC with random packet sizes, losses and
// silence or noise: it must keep the lengths and never panic.
func TestPLCRandomUse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []int{8000, 16000} {
		p := NewPLC(rate)
		var out []int16
		total := 0
		for range 2000 {
			n := 1 + r.IntN(rate/25)
			total += n
			if r.IntN(3) == 0 {
				out = p.Conceal(out, n)
				continue
			}
			pkt := make([]int16, n)
			if r.IntN(2) == 0 {
				for i := range pkt {
					pkt[i] = int16(r.IntN(65536) - 32768)
				}
			}
			out = append(out, p.Good(pkt)...)
		}
		if len(out) != total {
			t.Fatalf("%d Hz: %d samples out, %d in", rate, len(out), total)
		}
	}
}

func BenchmarkPLCConceal(b *testing.B) {
	pcm := voicedTone(8000, 8000)
	p := NewPLC(8000)
	p.Good(append([]int16(nil), pcm[:4000]...))
	out := make([]int16, 0, 160)
	b.ReportAllocs()
	for b.Loop() {
		out = p.Conceal(out[:0], 160)
		p.Good(append(out[:0], pcm[4000:4160]...))
	}
}
