// Package bench measures voiced: the pipeline runtime's per-frame cost, the
// latency a turn adds on top of its providers (with fake STT, LLM and TTS
// that take configured times), and how many real-time sessions with the real
// Silero VAD one machine carries. It writes the results as a Markdown report
// with SVG charts, by default into bench/results (the recorded results,
// kept at the top of the tree). `voiced bench` runs it; scripts/bench.sh
// (`make bench`) adds the Go micro-benchmarks and the WebSocket end-to-end
// measurement.
//
// Everything here is bounded in time and runs on the wall clock: it is a
// program's library, not a test.
package bench

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Dist summarizes a sample of durations.
type Dist struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

// Summarize returns the distribution of v (which it sorts).
func Summarize(v []time.Duration) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	var sum float64
	for _, d := range v {
		sum += float64(d)
	}
	return Dist{
		N: len(v), Min: v[0], Max: v[len(v)-1],
		P50: Quantile(v, 0.50), P90: Quantile(v, 0.90), P99: Quantile(v, 0.99),
		Mean: time.Duration(sum / float64(len(v))),
	}
}

// Quantile returns the q-quantile (0..1) of sorted v by the nearest-rank
// method, 0 for an empty sample.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100 || v <= -100:
		return trimFloat(v, 0)
	case v >= 10 || v <= -10:
		return trimFloat(v, 1)
	default:
		return trimFloat(v, 2)
	}
}

// us formats d in microseconds.
func us(d time.Duration) string {
	v := float64(d) / float64(time.Microsecond)
	if v >= 100 {
		return trimFloat(v, 0)
	}
	return trimFloat(v, 2)
}

func trimFloat(v float64, prec int) string {
	return strconv.FormatFloat(v, 'f', prec, 64)
}
