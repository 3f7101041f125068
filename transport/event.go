package transport

// The protocol's events (docs/protocol.md). Every edge that speaks them —
// the WebSocket's text messages, WebRTC's "events" data channel, LiveKit's
// data packets — encodes the same Event values, so they stay identical.

import (
	"time"

	"github.com/voiced-dev/voiced/frame"
)

// Event is a server → client JSON message (docs/protocol.md). Pointer fields
// are sent only when set, so a false `final` is told from a missing one.
type Event struct {
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

	*EventMetrics
}

// EventMetrics are the fields of a `metrics` event, in milliseconds.
type EventMetrics struct {
	Endpointing  float64 `json:"endpointing_ms"`
	STTFinal     float64 `json:"stt_final_ms"`
	LLMFirst     float64 `json:"llm_first_token_ms"`
	Sentence     float64 `json:"first_sentence_ms"`
	TTSFirst     float64 `json:"tts_first_audio_ms"`
	AudioOut     float64 `json:"audio_out_ms"`
	VoiceToVoice float64 `json:"voice_to_voice_ms"`
	// Turn taking (frame.TurnMetrics).
	EndpointDelay float64 `json:"endpoint_delay_ms"`
	Hold          float64 `json:"hold_ms"`
	BargeIn       string  `json:"barge_in,omitempty"`
	Pause         float64 `json:"pause_ms"`
	Resumes       int     `json:"resumes"`
	ResumedPause  float64 `json:"resumed_pause_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// EventFor maps a frame to the client event it produces, if any. TMs is
// left zero for the caller to stamp. For a BotStoppedSpeaking with
// Interrupted set, an `interrupted` event goes first (see InterruptedEvent);
// Conn.Notify sends both.
func EventFor(f frame.Frame) (Event, bool) {
	yes, no := true, false
	ev := Event{Turn: f.Header().Turn}
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
		m := f.Latency
		ev.Type, ev.Turn = "metrics", m.Turn
		ev.EventMetrics = &EventMetrics{
			Endpointing: ms(m.Endpointing), STTFinal: ms(m.STTFinal), LLMFirst: ms(m.LLMFirst),
			Sentence: ms(m.SentenceTTS), TTSFirst: ms(m.TTSFirst), AudioOut: ms(m.AudioOut),
			VoiceToVoice:  ms(m.VoiceToVoice),
			EndpointDelay: ms(m.EndpointDelay), Hold: ms(m.Hold), BargeIn: m.BargeIn, Pause: ms(m.Pause),
			Resumes: m.Resumes, ResumedPause: ms(m.ResumedPause),
		}
	default:
		return ev, false
	}
	return ev, true
}

// InterruptedEvent reports whether f is the end of an interrupted answer,
// which is announced with an `interrupted` event (of the returned turn)
// before the `bot_stopped_speaking` event.
func InterruptedEvent(f frame.Frame) (Event, bool) {
	b, ok := f.(*frame.BotStoppedSpeaking)
	if !ok || !b.Interrupted {
		return Event{}, false
	}
	return Event{Type: "interrupted", Turn: b.Turn}, true
}

// Optional reports whether ev may be dropped for a client too slow to
// receive everything: only interim transcripts may.
func (ev Event) Optional() bool {
	return ev.Type == "transcript" && (ev.Final == nil || !*ev.Final)
}
