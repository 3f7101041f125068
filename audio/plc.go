package audio

import "math"

// PLC conceals lost packets of a codec that has no concealment of its own
// (G.711, G.722) by waveform substitution, after the method of ITU-T G.711
// Appendix I: the last pitch period heard is repeated, faded out over the
// loss, and the first good audio after it is cross-faded with the
// concealment's continuation so that neither edge clicks. Voiced speech is
// nearly periodic over tens of milliseconds, so a repeated period stands in
// for a lost 20 ms far better than the silence (and its two clicks) it
// replaces; unvoiced sounds come out as a faded noise of the right colour.
//
// A PLC works at one sample rate (8 or 16 kHz as given to NewPLC). Good
// passes every decoded packet through it, Conceal stands in for each lost
// one. Not safe for concurrent use.
type PLC struct {
	rate    int     // samples per millisecond
	hist    []int16 // the last histLen samples heard (or made)
	histLen int
	minP    int // pitch search range, in samples
	maxP    int

	lost    int     // samples concealed in the current loss (0: none)
	period  int     // the pitch period repeated during the loss (0: silence)
	pre     []int16 // the history as it was when the loss began
	buf     []int16 // the repeated periods, the wrap smoothed
	pos     int     // next sample of buf to play
	periods int     // periods in buf (grows with a longer loss)
}

const (
	plcMinPitch = 5  // ms: 200 Hz, the highest pitch searched (G.711 App. I: 40 samples at 8 kHz)
	plcMaxPitch = 15 // ms: 66 Hz, the lowest
	plcCorr     = 20 // ms of audio whose pitch is estimated
	plcFadeFrom = 10 // ms into a loss the fade-out begins
	plcFadeLen  = 50 // ms it takes to reach silence (20% per 10 ms)
)

// NewPLC returns a concealer for mono audio at sampleRate (8000 or 16000;
// other rates multiple of 1000 work the same way).
func NewPLC(sampleRate int) *PLC {
	r := max(sampleRate/1000, 1)
	p := &PLC{rate: r, minP: plcMinPitch * r, maxP: plcMaxPitch * r}
	// History: the longest period three times over (a long loss repeats up
	// to three periods) and the quarter period before them, or the pitch
	// search's reach, whichever is longer.
	p.histLen = max(3*p.maxP+p.maxP/4, p.maxP+plcCorr*r)
	p.hist = make([]int16, 0, p.histLen)
	return p
}

// Good takes the decoded audio of a packet that arrived, in place: after a
// loss, its start is cross-faded from the concealment's continuation, so
// the real signal takes over without a step. It returns pcm.
func (p *PLC) Good(pcm []int16) []int16 {
	if p.lost > 0 {
		if p.period > 0 {
			// G.711 App. I: a 1/4-period overlap, 4 ms longer for each
			// 10 ms lost beyond the first, at most the packet.
			n := p.period/4 + 4*p.rate*max(p.lost/(10*p.rate)-1, 0)
			n = min(n, len(pcm))
			for i := range n {
				g := p.gain(p.lost + i)
				if g == 0 {
					break
				}
				w := float64(i+1) / float64(n+1)
				pcm[i] = clamp16((1-w)*float64(p.next())*g + w*float64(pcm[i]))
			}
		}
		p.lost, p.period, p.periods = 0, 0, 0
	}
	p.remember(pcm)
	return pcm
}

// Conceal appends n samples standing in for lost audio. A loss of 60 ms or
// more ends in silence, as does one with too little heard before it.
func (p *PLC) Conceal(pcm []int16, n int) []int16 {
	if p.lost == 0 {
		p.start()
	}
	at := len(pcm)
	for range n {
		var s int16
		if p.period > 0 {
			// A loss longer than 10 ms repeats two periods, longer than
			// 20 ms three, so that one period's buzz does not build up.
			if want := min(1+p.lost/(10*p.rate), 3); want > p.periods {
				p.widen(want)
			}
			s = clamp16(float64(p.next()) * p.gain(p.lost))
		}
		pcm = append(pcm, s)
		p.lost++
	}
	p.remember(pcm[at:])
	return pcm
}

// gain is the fade applied k samples into a loss.
func (p *PLC) gain(k int) float64 {
	from := plcFadeFrom * p.rate
	if k < from {
		return 1
	}
	return max(0, 1-float64(k-from)/float64(plcFadeLen*p.rate))
}

// start begins a loss: it keeps the history heard so far (the concealment
// is made from it, not from itself), estimates its pitch period and readies
// one period to repeat. With too little heard, the loss is silence.
func (p *PLC) start() {
	p.period, p.periods = 0, 0
	if len(p.hist) < p.maxP+plcCorr*p.rate {
		return
	}
	p.pre = append(p.pre[:0], p.hist...)
	p.period = p.pitch()
	p.widen(1)
}

// widen makes buf the last k periods heard before the loss, to be played in
// a cycle. Where the cycle wraps from its end (the last sample heard) to its
// start, the end's last quarter period is blended into the audio that came
// just before the start, so the wrap continues the waveform instead of
// stepping. Widening mid-loss keeps the place in the cycle.
func (p *PLC) widen(k int) {
	h := p.pre
	k = min(k, len(h)/p.period)
	if k <= p.periods {
		return
	}
	L, q := k*p.period, p.period/4
	if p.periods > 0 {
		// Index pos of the old cycle (the last periods·P samples heard) is
		// index pos + (k − periods)·P of the new one.
		p.pos += (k - p.periods) * p.period
	} else {
		p.pos = 0 // the first concealed sample: the cycle's start
	}
	p.buf = append(p.buf[:0], h[len(h)-L:]...)
	if len(h) >= L+q {
		for i := range q {
			w := float64(i+1) / float64(q+1)
			p.buf[L-q+i] = clamp16((1-w)*float64(h[len(h)-q+i]) + w*float64(h[len(h)-L-q+i]))
		}
	}
	p.periods = k
}

// next returns the next sample of the cycle.
func (p *PLC) next() int16 {
	if len(p.buf) == 0 {
		return 0
	}
	if p.pos >= len(p.buf) {
		p.pos %= len(p.buf)
	}
	s := p.buf[p.pos]
	p.pos++
	return s
}

// pitch returns the period, within [minP, maxP], at which the last plcCorr
// ms of the history best matches itself one period earlier (normalized
// cross-correlation).
func (p *PLC) pitch() int {
	h := p.hist
	w := plcCorr * p.rate
	x := h[len(h)-w:]
	best, bestScore := p.maxP, -2.0
	for per := p.minP; per <= p.maxP; per++ {
		y := h[len(h)-w-per : len(h)-per]
		var xy, yy float64
		for i := range x {
			xy += float64(x[i]) * float64(y[i])
			yy += float64(y[i]) * float64(y[i])
		}
		if yy == 0 {
			continue
		}
		if s := xy / math.Sqrt(yy); s > bestScore {
			best, bestScore = per, s
		}
	}
	return best
}

// remember appends s to the history, keeping its last histLen samples.
func (p *PLC) remember(s []int16) {
	if len(s) >= p.histLen {
		p.hist = append(p.hist[:0], s[len(s)-p.histLen:]...)
		return
	}
	if over := len(p.hist) + len(s) - p.histLen; over > 0 {
		p.hist = append(p.hist[:0], p.hist[over:]...)
	}
	p.hist = append(p.hist, s...)
}

func clamp16(v float64) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
