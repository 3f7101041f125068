package tts

import (
	"context"
	"testing"

	"github.com/voiced-dev/voiced/frame"
)

// chunky speaks n samples in awkward chunks.
type chunky struct{ n int }

func (chunky) Format() frame.Format { return frame.Mono16k }

func (c chunky) Synthesize(_ context.Context, _, _ string, emit func([]int16) error) error {
	buf := make([]int16, 1000)
	sizes := []int{1, 7, 100, 333, 1000, 29}
	for j, i := 0, 0; j < c.n; i++ {
		k := min(sizes[i%len(sizes)], c.n-j)
		if err := emit(buf[:k]); err != nil {
			return err
		}
		j += k
	}
	return nil
}

type countEmitter struct{ n int }

func (e *countEmitter) Emit(frame.Frame)   { e.n++ }
func (e *countEmitter) EmitUp(frame.Frame) { e.n++ }
func (e *countEmitter) Pass(frame.Frame)   { e.n++ }

// BenchmarkSentence measures the worker's own cost of speaking a sentence of
// one second (50 frames of 20 ms) delivered in awkward chunks: re-chunking
// and frame allocation, not synthesis.
func BenchmarkSentence(b *testing.B) {
	proc, err := NewProcessor(chunky{n: 16000}, ProcessorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	out := &countEmitter{}
	proc.out = out
	j := job{ctx: context.Background(), turn: 1, text: "A sentence."}
	b.ReportAllocs()
	for b.Loop() {
		proc.speak(j)
	}
	if out.n == 0 {
		b.Fatal("nothing emitted")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/frame")
}
