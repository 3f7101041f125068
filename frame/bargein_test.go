package frame_test

import (
	"testing"

	"github.com/voiced-dev/voiced/frame"
)

// TestBargeInFramesAreSystem: the pause and resume controls overtake the
// answer's queued audio and survive the interruption they may precede.
func TestBargeInFramesAreSystem(t *testing.T) {
	for _, f := range []frame.Frame{&frame.PausePlayout{}, &frame.ResumePlayout{}, &frame.BargeIn{}, &frame.Endpoint{}} {
		if c := f.Class(); c != frame.System {
			t.Errorf("%T: class %v, want System", f, c)
		}
		if f.Header() == nil {
			t.Errorf("%T: nil header", f)
		}
	}
}
