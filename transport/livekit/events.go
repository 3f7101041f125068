package livekit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/frame"
)

// event is an agent → participant data message: the same JSON events as
// the WebSocket protocol (docs/protocol.md), sent on Topic.
//
// The WebSocket transport keeps its mapping unexported; this one follows it
// field for field until the shared mapping (transport/events) lands, when
// it should be replaced by it.
type event struct {
	Type  string `json:"type"`
	Turn  uint32 `json:"turn"`
	TMs   int64  `json:"t_ms"`
	Text  string `json:"text,omitempty"`
	Final *bool  `json:"final,omitempty"`

	SessionID        string `json:"session_id,omitempty"`
	SampleRate       int    `json:"sample_rate,omitempty"`
	OutputSampleRate int    `json:"output_sample_rate,omitempty"`

	Interrupted *bool `json:"interrupted,omitempty"`

	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`

	Agent     string `json:"agent,omitempty"`
	Name      string `json:"name,omitempty"`
	CallID    string `json:"call_id,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Error     string `json:"error,omitempty"`

	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	*metrics
}

type metrics struct {
	Endpointing  float64 `json:"endpointing_ms"`
	STTFinal     float64 `json:"stt_final_ms"`
	LLMFirst     float64 `json:"llm_first_token_ms"`
	Sentence     float64 `json:"first_sentence_ms"`
	TTSFirst     float64 `json:"tts_first_audio_ms"`
	AudioOut     float64 `json:"audio_out_ms"`
	VoiceToVoice float64 `json:"voice_to_voice_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// eventFor maps a frame to the event it produces, if any.
func eventFor(f frame.Frame) (event, bool) {
	yes, no := true, false
	ev := event{Turn: f.Header().Turn}
	switch f := f.(type) {
	case *frame.UserStartedSpeaking:
		ev.Type = "user_started_speaking"
	case *frame.UserStoppedSpeaking:
		ev.Type = "user_stopped_speaking"
	case *frame.Transcript:
		if f.Text == "" {
			return ev, false
		}
		ev.Type, ev.Text = "transcript", f.Text
		if f.Final {
			ev.Final = &yes
		} else {
			ev.Final = &no
		}
	case *frame.TTSText:
		ev.Type, ev.Text = "bot_text", f.Text
	case *frame.BotStartedSpeaking:
		ev.Type = "bot_started_speaking"
	case *frame.BotStoppedSpeaking:
		ev.Type = "bot_stopped_speaking"
		ev.Interrupted = &f.Interrupted
	case *frame.Error:
		if f.Err == nil {
			return ev, false
		}
		ev.Type, ev.Code, ev.Message = "error", "internal", f.Err.Error()
	case *frame.Handoff:
		ev.Type, ev.From, ev.To = "handoff", f.From, f.To
	case *frame.ToolCall:
		ev.Type, ev.Agent, ev.Name, ev.CallID, ev.Arguments = "tool_call", f.Agent, f.Name, f.CallID, f.Arguments
	case *frame.ToolResult:
		ev.Type, ev.Agent, ev.Name, ev.CallID, ev.Error = "tool_result", f.Agent, f.Name, f.CallID, f.Err
	case *frame.Metrics:
		m := f.Turn
		ev.Type, ev.Turn = "metrics", m.Turn
		ev.metrics = &metrics{
			Endpointing: ms(m.Endpointing), STTFinal: ms(m.STTFinal), LLMFirst: ms(m.LLMFirst),
			Sentence: ms(m.SentenceTTS), TTSFirst: ms(m.TTSFirst), AudioOut: ms(m.AudioOut),
			VoiceToVoice: ms(m.VoiceToVoice),
		}
	default:
		return ev, false
	}
	return ev, true
}

// MaxText bounds the text of a "text" message, in bytes.
const MaxText = 4096

// message is a participant → agent data message on Topic.
type message struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// parseMessage decodes a participant's data message strictly: a JSON object
// of type "text" (with at most MaxText bytes of text) or "end", with no
// other fields. Errors wrap ErrBadMessage.
func parseMessage(data []byte) (message, error) {
	var m message
	if !utf8.Valid(data) {
		return m, fmt.Errorf("%w: not valid UTF-8", ErrBadMessage)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return m, fmt.Errorf("%w: not a JSON object", ErrBadMessage)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	switch m.Type {
	case "text":
		if len(m.Text) > MaxText {
			return m, fmt.Errorf("%w: text of %d bytes is over %d", ErrBadMessage, len(m.Text), MaxText)
		}
	case "end":
	case "":
		return m, fmt.Errorf("%w: message has no type", ErrBadMessage)
	default:
		return m, fmt.Errorf("%w: unknown message type %q", ErrBadMessage, m.Type)
	}
	return m, nil
}
