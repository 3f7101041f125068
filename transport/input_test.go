package transport

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
)

// collector is an Emitter keeping what a stage sends, by method.
type collector struct {
	emitted, passed []frame.Frame
}

func (c *collector) Emit(f frame.Frame)   { c.emitted = append(c.emitted, f) }
func (c *collector) EmitUp(f frame.Frame) { c.emitted = append(c.emitted, f) }
func (c *collector) Pass(f frame.Frame)   { c.passed = append(c.passed, f) }

// tone returns n frames of a 440 Hz tone at rate on channels channels;
// channel c is multiplied by gains[c].
func tone(rate, channels, n int, gains ...float64) []int16 {
	s := make([]int16, n*channels)
	for i := range n {
		v := 8000 * math.Sin(2*math.Pi*440*float64(i)/float64(rate))
		for c := range channels {
			s[i*channels+c] = int16(v * gains[c])
		}
	}
	return s
}

// run feeds pcm to in in 20 ms frames and returns the concatenated output,
// checking every output frame's format and metadata.
func run(t *testing.T, in *Input, from frame.Format, pcm []int16) []int16 {
	t.Helper()
	step := from.Samples(20 * time.Millisecond)
	var out []int16
	for i := 0; i < len(pcm); i += step {
		f := &frame.InputAudio{Meta: frame.Meta{ID: 9, Turn: 4, PTS: time.Duration(i)}, Format: from, Samples: pcm[i:min(i+step, len(pcm))]}
		var c collector
		if err := in.Process(context.Background(), f, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.emitted) != 1 || len(c.passed) != 0 {
			t.Fatalf("emitted %d, passed %d frames, want one emitted", len(c.emitted), len(c.passed))
		}
		a := c.emitted[0].(*frame.InputAudio)
		if a.Format != frame.Mono16k || a.Turn != 4 || a.PTS != time.Duration(i) || a.ID != 0 {
			t.Fatalf("output %+v, want 16 kHz mono, turn 4, PTS %d and no ID yet", a.Meta, i)
		}
		out = append(out, a.Samples...)
	}
	return out
}

func TestInputResample(t *testing.T) {
	for _, rate := range []int{8000, 22050, 24000, 44100, 48000} {
		from := frame.Format{SampleRate: rate, Channels: 1}
		in, err := NewInput(from, frame.Mono16k)
		if err != nil {
			t.Fatal(err)
		}
		src := tone(rate, 1, rate, 1) // one second
		got := run(t, in, from, src)
		if d := len(got) - 16000; d < -2 || d > 2 {
			t.Errorf("%d Hz: %d samples out for one second, want 16000±2", rate, len(got))
		}
		if a, b := audio.RMS(src), audio.RMS(got[4000:]); math.Abs(b/a-1) > 0.05 {
			t.Errorf("%d Hz: tone RMS %.4f in, %.4f out", rate, a, b)
		}
	}
}

func TestInputStereo(t *testing.T) {
	from := frame.Format{SampleRate: 48000, Channels: 2}
	mono := frame.Format{SampleRate: 48000, Channels: 1}

	// Both channels equal: the same as the mono signal resampled.
	st, _ := NewInput(from, frame.Mono16k)
	mo, _ := NewInput(mono, frame.Mono16k)
	got := run(t, st, from, tone(48000, 2, 48000, 1, 1))
	want := run(t, mo, mono, tone(48000, 1, 48000, 1))
	if !slices.Equal(got, want) {
		t.Error("stereo with equal channels differs from mono")
	}

	// Opposite channels cancel.
	st, _ = NewInput(from, frame.Mono16k)
	for i, v := range run(t, st, from, tone(48000, 2, 48000, 1, -1)) {
		if v < -1 || v > 1 {
			t.Fatalf("sample %d = %d, want silence", i, v)
		}
	}

	// At 16 kHz only the downmix runs: the average of each pair.
	st16 := frame.Format{SampleRate: 16000, Channels: 2}
	in, err := NewInput(st16, frame.Mono16k)
	if err != nil {
		t.Fatal(err)
	}
	first := run(t, in, st16, []int16{100, 300, -32768, -32768, 32767, 32767, 1, 2})
	if want := []int16{200, -32768, 32767, 1}; !slices.Equal(first, want) {
		t.Errorf("downmix %v, want %v", first, want)
	}
	// The stage reuses its buffers: earlier output must not change.
	run(t, in, st16, []int16{5, 5, 5, 5, 5, 5, 5, 5})
	if want := []int16{200, -32768, 32767, 1}; !slices.Equal(first, want) {
		t.Errorf("earlier output changed to %v", first)
	}
}

// TestInputCopies: the output does not alias the input frame's samples.
func TestInputCopies(t *testing.T) {
	from := frame.Format{SampleRate: 16000, Channels: 2}
	in, _ := NewInput(from, frame.Mono16k)
	src := []int16{10, 10, 20, 20}
	out := run(t, in, from, src)
	src[0], src[1] = 99, 99
	if out[0] != 10 {
		t.Errorf("output changed with the input: %v", out)
	}
}

// TestInputPasses: frames other than client audio, and audio already in the
// pipeline's format, go on untouched.
func TestInputPasses(t *testing.T) {
	in, err := NewInput(frame.Format{SampleRate: 48000, Channels: 1}, frame.Mono16k)
	if err != nil {
		t.Fatal(err)
	}
	frames := []frame.Frame{
		&frame.InputAudio{Format: frame.Mono16k, Samples: []int16{1, 2, 3}},
		&frame.OutputAudio{Format: frame.Format{SampleRate: 48000, Channels: 1}, Samples: []int16{1}},
		&frame.Transcript{Text: "hi", Final: true, Typed: true},
		&frame.Interruption{},
		&frame.End{},
	}
	for _, f := range frames {
		var c collector
		if err := in.Process(context.Background(), f, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.emitted) != 0 || len(c.passed) != 1 || c.passed[0] != f {
			t.Errorf("%T: emitted %d, passed %v; want it passed as is", f, len(c.emitted), c.passed)
		}
	}
}

func TestInputRejects(t *testing.T) {
	in, err := NewInput(frame.Format{SampleRate: 48000, Channels: 1}, frame.Mono16k)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	wrong := &frame.InputAudio{Format: frame.Format{SampleRate: 8000, Channels: 1}, Samples: []int16{1}}
	if err := in.Process(context.Background(), wrong, &c); err == nil || len(c.emitted)+len(c.passed) != 0 {
		t.Errorf("audio in an unexpected format: err %v, %d frames sent", err, len(c.emitted)+len(c.passed))
	}
	for _, tc := range []struct{ from, to frame.Format }{
		{frame.Format{SampleRate: 48000, Channels: 0}, frame.Mono16k},
		{frame.Format{SampleRate: 48000, Channels: 1}, frame.Format{SampleRate: 16000, Channels: 2}},
		{frame.Format{SampleRate: 12345, Channels: 1}, frame.Mono16k},
	} {
		if _, err := NewInput(tc.from, tc.to); err == nil {
			t.Errorf("NewInput(%+v, %+v) accepted", tc.from, tc.to)
		}
	}
}

func BenchmarkInput48kStereo(b *testing.B) {
	from := frame.Format{SampleRate: 48000, Channels: 2}
	in, _ := NewInput(from, frame.Mono16k)
	f := &frame.InputAudio{Format: from, Samples: tone(48000, 2, 960, 1, 0.5)} // 20 ms
	var c collector
	b.SetBytes(int64(2 * len(f.Samples)))
	b.ReportAllocs()
	for b.Loop() {
		c.emitted = c.emitted[:0]
		in.Process(context.Background(), f, &c)
	}
}
