package transport

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

func TestEventFor(t *testing.T) {
	for _, tc := range []struct {
		f    frame.Frame
		want string // JSON without t_ms
	}{
		{&frame.Transcript{Meta: frame.Meta{Turn: 2}, Text: "hi", Final: true}, `{"type":"transcript","turn":2,"t_ms":0,"text":"hi","final":true}`},
		{&frame.Transcript{Text: "h"}, `{"type":"transcript","turn":0,"t_ms":0,"text":"h","final":false}`},
		{&frame.TTSText{Text: "Hello."}, `{"type":"bot_text","turn":0,"t_ms":0,"text":"Hello."}`},
		{&frame.BotStoppedSpeaking{Interrupted: true}, `{"type":"bot_stopped_speaking","turn":0,"t_ms":0,"interrupted":true}`},
		{&frame.Handoff{From: "triage", To: "billing", Voice: "awb"}, `{"type":"handoff","turn":0,"t_ms":0,"from":"triage","to":"billing"}`},
		{&frame.ToolCall{Agent: "billing", Name: "lookup_invoice", CallID: "c1", Arguments: `{"id":"7"}`}, `{"type":"tool_call","turn":0,"t_ms":0,"agent":"billing","name":"lookup_invoice","call_id":"c1","arguments":"{\"id\":\"7\"}"}`},
		{&frame.ToolResult{Agent: "billing", Name: "lookup_invoice", CallID: "c1", Err: "timeout"}, `{"type":"tool_result","turn":0,"t_ms":0,"agent":"billing","name":"lookup_invoice","call_id":"c1","error":"timeout"}`},
		{&frame.Error{Err: errors.New("boom")}, `{"type":"error","turn":0,"t_ms":0,"code":"internal","message":"boom"}`},
		{&frame.Metrics{Latency: frame.TurnMetrics{Turn: 3, VoiceToVoice: 512 * time.Millisecond}}, `{"type":"metrics","turn":3,"t_ms":0,"endpointing_ms":0,"stt_final_ms":0,"llm_first_token_ms":0,"first_sentence_ms":0,"tts_first_audio_ms":0,"audio_out_ms":0,"voice_to_voice_ms":512,"endpoint_delay_ms":0,"hold_ms":0,"pause_ms":0,"resumes":0,"resumed_pause_ms":0}`},
		{&frame.Metrics{Latency: frame.TurnMetrics{Turn: 4, EndpointDelay: 50 * time.Millisecond, BargeIn: frame.BargeInInterrupted, Pause: 180 * time.Millisecond, Resumes: 2, ResumedPause: 350 * time.Millisecond}}, `{"type":"metrics","turn":4,"t_ms":0,"endpointing_ms":0,"stt_final_ms":0,"llm_first_token_ms":0,"first_sentence_ms":0,"tts_first_audio_ms":0,"audio_out_ms":0,"voice_to_voice_ms":0,"endpoint_delay_ms":50,"hold_ms":0,"barge_in":"interrupted","pause_ms":180,"resumes":2,"resumed_pause_ms":350}`},
	} {
		ev, ok := EventFor(tc.f)
		if !ok {
			t.Errorf("%T: no event", tc.f)
			continue
		}
		b, _ := json.Marshal(ev)
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.f, b, tc.want)
		}
	}
	for _, f := range []frame.Frame{&frame.InputAudio{}, &frame.LLMText{Text: "x"}, &frame.Transcript{}, &frame.Error{}} {
		if _, ok := EventFor(f); ok {
			t.Errorf("%T produced an event", f)
		}
	}
}

func TestInterruptedAndOptional(t *testing.T) {
	if ev, ok := InterruptedEvent(&frame.BotStoppedSpeaking{Meta: frame.Meta{Turn: 4}, Interrupted: true}); !ok || ev.Type != "interrupted" || ev.Turn != 4 {
		t.Errorf("interrupted stop: %+v %v", ev, ok)
	}
	for _, f := range []frame.Frame{&frame.BotStoppedSpeaking{}, &frame.BotStartedSpeaking{}} {
		if _, ok := InterruptedEvent(f); ok {
			t.Errorf("%T (not interrupted) gave an interrupted event", f)
		}
	}
	interim, _ := EventFor(&frame.Transcript{Text: "h"})
	final, _ := EventFor(&frame.Transcript{Text: "h", Final: true})
	text, _ := EventFor(&frame.TTSText{Text: "x"})
	if !interim.Optional() || final.Optional() || text.Optional() {
		t.Error("only interim transcripts are optional")
	}
}
