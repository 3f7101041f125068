package bench

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkFrame measures voiced's pipeline and the bare channel baseline
// the way the report does, adding per-frame latency percentiles (idle: one
// frame in flight) as custom metrics.
func BenchmarkFrame(b *testing.B) {
	for _, impl := range []struct {
		name string
		fn   func(n, frames, inFlight int) FrameResult
	}{{"voiced", MeasurePipeline}, {"channels", MeasureChannels}} {
		for _, n := range []int{0, 1, 5, 10} {
			b.Run(fmt.Sprintf("%s/stages=%d", impl.name, n), func(b *testing.B) {
				frames := max(b.N, 100)
				r := impl.fn(n, frames, 64)
				b.ReportMetric(r.NsPerFrame, "ns/frame")
				b.ReportMetric(r.AllocsPerFrame, "allocs/frame")
				b.ReportMetric(float64(r.IdleDist.P50.Nanoseconds()), "idle-p50-ns")
				b.ReportMetric(float64(r.IdleDist.P99.Nanoseconds()), "idle-p99-ns")
				b.ReportMetric(float64(r.LoadedDist.P99.Nanoseconds()), "loaded-p99-ns")
			})
		}
	}
}

// TestMeasure: every frame pushed is measured, latencies are positive, and
// the runtime allocates nothing per frame.
func TestMeasure(t *testing.T) {
	for _, fn := range []func(n, frames, inFlight int) FrameResult{MeasurePipeline, MeasureChannels} {
		r := fn(5, 3000, 64)
		if len(r.Loaded) != 3000 || len(r.Idle) != 3000 {
			t.Fatalf("%s: %d loaded, %d idle samples, want 3000", r.Impl, len(r.Loaded), len(r.Idle))
		}
		if r.IdleDist.Min <= 0 || r.LoadedDist.Max < r.LoadedDist.P50 || r.NsPerFrame <= 0 {
			t.Errorf("%s: %+v %+v", r.Impl, r.IdleDist, r.LoadedDist)
		}
		if r.AllocsPerFrame > 0.1 {
			t.Errorf("%s: %.2f allocations per frame", r.Impl, r.AllocsPerFrame)
		}
	}
}

func TestSummarize(t *testing.T) {
	var v []time.Duration
	for i := 100; i >= 1; i-- {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	d := Summarize(v)
	want := Dist{N: 100, Min: time.Millisecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond,
		P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}
	if d != want {
		t.Errorf("got %+v\nwant %+v", d, want)
	}
	if (Summarize(nil) != Dist{}) {
		t.Error("empty sample")
	}
}
