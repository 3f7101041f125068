package websocket

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// event is a server → client JSON message (docs/protocol.md).
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

// eventFor maps a frame to the client event it produces, if any.
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

// observer turns each new frame into an event on c.
type observer struct{ c *conn }

func (o observer) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	o.c.notify(h.Frame)
}

func (c *conn) notify(f frame.Frame) {
	ev, ok := eventFor(f)
	if !ok {
		return
	}
	if b, ok := f.(*frame.BotStoppedSpeaking); ok && b.Interrupted {
		c.sendEvent(event{Type: "interrupted", Turn: ev.Turn}, true)
	}
	// Interim transcripts may be dropped for a slow client; the rest may not.
	_, interim := f.(*frame.Transcript)
	interim = interim && (ev.Final == nil || !*ev.Final)
	c.sendEvent(ev, !interim)
}

func (c *conn) sendEvent(ev event, must bool) {
	ev.TMs = time.Since(c.start).Milliseconds()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	c.enqueue(outMsg{text: true, data: b}, must)
}

// errorCode gives the protocol's error code and close code for err.
func errorCode(err error) (string, int) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		return pe.code, pe.close
	case errors.Is(err, errShutdown):
		return "shutting_down", 1001
	case errors.Is(err, errSlowClient):
		return "slow_client", 1008
	}
	return "internal", 1011
}
