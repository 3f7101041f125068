package transport

import (
	"context"
	"fmt"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Input is the first stage of a transport's pipeline: it converts the
// client's InputAudio to the pipeline's format and passes everything else on.
type Input struct {
	from, to frame.Format
	rs       *audio.Resampler
	mono     []int16
}

// NewInput returns an input stage converting from the client's format to to.
func NewInput(from, to frame.Format) (*Input, error) {
	if from.Channels < 1 || to.Channels != 1 {
		return nil, fmt.Errorf("transport: input %+v → %+v: unsupported channels", from, to)
	}
	in := &Input{from: from, to: to}
	if from.SampleRate != to.SampleRate {
		rs, err := audio.NewResampler(from.SampleRate, to.SampleRate)
		if err != nil {
			return nil, fmt.Errorf("transport: input: %w", err)
		}
		in.rs = rs
	}
	return in, nil
}

// Name implements pipeline.Namer.
func (in *Input) Name() string { return "input" }

// Process implements pipeline.Processor.
func (in *Input) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	a, ok := f.(*frame.InputAudio)
	if !ok || a.Format == in.to {
		out.Pass(f)
		return nil
	}
	if a.Format != in.from {
		return fmt.Errorf("transport: input audio %+v, want %+v", a.Format, in.from)
	}
	pcm := a.Samples
	if in.from.Channels > 1 {
		in.mono = audio.Downmix(in.mono[:0], pcm, in.from.Channels)
		pcm = in.mono
	}
	if in.rs != nil {
		pcm = in.rs.Process(make([]int16, 0, in.rs.MaxOutput(len(pcm))), pcm)
	} else {
		pcm = append([]int16(nil), pcm...)
	}
	out.Emit(&frame.InputAudio{Meta: frame.Meta{Turn: a.Turn, PTS: a.PTS}, Format: in.to, Samples: pcm})
	return nil
}
