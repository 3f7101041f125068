package frame_test

import (
	"testing"

	"github.com/voiced-dev/voiced/frame"
)

// custom embeds Meta and has a Class, as a frame type of another package
// would.
type custom struct{ frame.Meta }

func (*custom) Class() frame.Class { return frame.System }

func TestFrameIsSealed(t *testing.T) {
	if _, ok := any(&custom{}).(frame.Frame); ok {
		t.Fatal("a type outside package frame implements frame.Frame by embedding Meta")
	}
	for _, f := range []frame.Frame{
		&frame.InputAudio{}, &frame.OutputAudio{}, &frame.UserStartedSpeaking{}, &frame.UserStoppedSpeaking{},
		&frame.UserSpeaking{}, &frame.UserBackchannel{}, &frame.Interruption{}, &frame.BotStartedSpeaking{},
		&frame.BotStoppedSpeaking{}, &frame.BotSpoke{}, &frame.Error{}, &frame.Metrics{}, &frame.Transcript{},
		&frame.LLMText{}, &frame.TTSText{}, &frame.LLMResponseStart{}, &frame.LLMResponseEnd{}, &frame.End{},
		&frame.Handoff{}, &frame.ToolCall{}, &frame.ToolResult{},
	} {
		if c := f.Class(); c < frame.System || c > frame.Control {
			t.Errorf("%T: class %v", f, c)
		}
		if f.Header() == nil {
			t.Errorf("%T: nil header", f)
		}
	}
}
