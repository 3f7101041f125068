package session_test

import (
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/turns"
	"github.com/voiced-dev/voiced/session"
)

// TestLatency: the breakdown of an answered spoken turn and of a typed one,
// measured from the shared tracker; an interrupted turn without audio is not
// reported, and a second playout episode of a turn is not reported twice.
func TestLatency(t *testing.T) {
	base := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	made := func(ms int, f frame.Frame) pipeline.Hop {
		return pipeline.Hop{Frame: f, From: 0, To: 1, At: at(ms), First: true}
	}
	m := func(n uint32) frame.Meta { return frame.Meta{Turn: n} }
	var got []frame.TurnMetrics
	tr := turns.New()
	session.NewLatency(tr, func(tm frame.TurnMetrics) { got = append(got, tm) })
	for _, h := range []pipeline.Hop{
		made(900, &frame.UserStoppedSpeaking{Meta: m(2), At: at(700)}),
		made(1100, &frame.Transcript{Meta: m(2), Text: "hello", Final: true}),
		made(1150, &frame.LLMResponseStart{Meta: m(2)}),
		made(1300, &frame.LLMText{Meta: m(2), Text: "Hi."}),
		made(1400, &frame.TTSText{Meta: m(2), Text: "Hi."}),
		made(1500, &frame.OutputAudio{Meta: m(2)}),
		made(1550, &frame.BotStartedSpeaking{Meta: m(2)}),
		made(1700, &frame.BotStoppedSpeaking{Meta: m(2)}), // underrun
		made(1800, &frame.BotStartedSpeaking{Meta: m(2)}),
		// Interrupted before any audio: not reported.
		made(3000, &frame.Interruption{Meta: m(3)}),
		made(3800, &frame.UserStoppedSpeaking{Meta: m(3), At: at(3600)}),
		made(3900, &frame.Transcript{Meta: m(3), Text: "story", Final: true}),
		made(3950, &frame.LLMResponseStart{Meta: m(3)}),
		made(4000, &frame.LLMText{Meta: m(3), Text: "Once."}),
		made(4100, &frame.Interruption{Meta: m(4)}),
		// Typed.
		// Typed, then interrupted by the turn-taking stage before the
		// answer (in turn 5).
		made(5000, &frame.Transcript{Meta: m(4), Text: "typed", Final: true, Typed: true}),
		made(5001, &frame.Interruption{Meta: m(5), Reason: "user typed"}),
		made(5050, &frame.LLMResponseStart{Meta: m(5)}),
		made(5100, &frame.LLMText{Meta: m(5), Text: "Sure."}),
		made(5150, &frame.TTSText{Meta: m(5), Text: "Sure."}),
		made(5200, &frame.OutputAudio{Meta: m(5)}),
		made(5300, &frame.BotStartedSpeaking{Meta: m(5)}),
	} {
		tr.OnHop(h)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	want := []frame.TurnMetrics{{
		Turn: 2, Endpointing: ms(200), STTFinal: ms(400), LLMFirst: ms(600), SentenceTTS: ms(700),
		TTSFirst: ms(800), AudioOut: ms(850), VoiceToVoice: ms(850),
	}, {
		Turn: 5, STTFinal: 0, LLMFirst: ms(100), SentenceTTS: ms(150), TTSFirst: ms(200), AudioOut: ms(300), VoiceToVoice: ms(300),
	}}
	if len(got) != len(want) {
		t.Fatalf("reported %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("turn %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
