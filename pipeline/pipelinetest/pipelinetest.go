// Package pipelinetest has helpers for testing pipeline stages: a
// pass-through stage, a recording sink, and golden strings that render frame
// sequences compactly ("A320*3 Start Int L(hi) End").
package pipelinetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Pass is a stage that passes every frame on.
var Pass = pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
})

// Recorder collects the frames leaving a pipeline: use its Sink as
// pipeline.Options.Sink. It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	frames []frame.Frame
}

// Sink records f.
func (r *Recorder) Sink(f frame.Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// Frames returns a copy of what was recorded.
func (r *Recorder) Frames() []frame.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

// Golden renders what was recorded with Golden.
func (r *Recorder) Golden() string { return Golden(r.Frames()) }

// Describe names a frame for golden strings.
func Describe(f frame.Frame) string {
	switch f := f.(type) {
	case *frame.InputAudio:
		return fmt.Sprintf("A%d", len(f.Samples))
	case *frame.OutputAudio:
		if f.Spoken != "" {
			return fmt.Sprintf("O%d[%s]", len(f.Samples), f.Spoken)
		}
		return fmt.Sprintf("O%d", len(f.Samples))
	case *frame.UserStartedSpeaking:
		return "Start"
	case *frame.UserStoppedSpeaking:
		return "Stop"
	case *frame.Interruption:
		return "Int"
	case *frame.BotStartedSpeaking:
		return "BotStart"
	case *frame.BotStoppedSpeaking:
		return "BotStop"
	case *frame.BotSpoke:
		return "Spoke(" + f.Text + ")"
	case *frame.Transcript:
		if f.Final {
			return "F(" + f.Text + ")"
		}
		return "T(" + f.Text + ")"
	case *frame.LLMText:
		return "L(" + f.Text + ")"
	case *frame.TTSText:
		return "S(" + f.Text + ")"
	case *frame.LLMResponseStart:
		return "RS"
	case *frame.LLMResponseEnd:
		return "RE"
	case *frame.Error:
		return "E"
	case *frame.Metrics:
		return "M"
	case *frame.Handoff:
		return "H(" + f.From + ">" + f.To + ")"
	case *frame.ToolCall:
		return "Tool(" + f.Name + ")"
	case *frame.ToolResult:
		return "Result(" + f.Name + ")"
	case *frame.End:
		return "End"
	}
	return fmt.Sprintf("%T", f)
}

// Golden renders frames with Describe, runs of equal names collapsed:
// "A300*3 Start".
func Golden(frames []frame.Frame) string {
	var out []string
	prev, n := "", 0
	flush := func() {
		switch {
		case n == 1:
			out = append(out, prev)
		case n > 1:
			out = append(out, fmt.Sprintf("%s*%d", prev, n))
		}
	}
	for _, f := range frames {
		d := Describe(f)
		if d == prev {
			n++
			continue
		}
		flush()
		prev, n = d, 1
	}
	flush()
	return strings.Join(out, " ")
}

// Find returns the recorded frames of type T, in order.
func Find[T frame.Frame](r *Recorder) []T {
	var out []T
	for _, f := range r.Frames() {
		if v, ok := f.(T); ok {
			out = append(out, v)
		}
	}
	return out
}
