package session_test

import (
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/turns"
	"github.com/voiced-dev/voiced/session"
)

// TestLatencyTurnTaking: a turn's report carries the endpointing delay and
// hold the turn stage used, whether it began by interrupting the bot after
// a pause, and the false interruptions (resumed pauses) since the last
// report.
func TestLatencyTurnTaking(t *testing.T) {
	base := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	made := func(ms int, f frame.Frame) pipeline.Hop {
		return pipeline.Hop{Frame: f, From: 0, To: 1, At: at(ms), First: true}
	}
	m := func(n uint32) frame.Meta { return frame.Meta{Turn: n} }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	answer := func(start, n int) []pipeline.Hop {
		u := uint32(n)
		return []pipeline.Hop{
			made(start, &frame.LLMResponseStart{Meta: m(u)}),
			made(start+10, &frame.LLMText{Meta: m(u), Text: "Well."}),
			made(start+20, &frame.TTSText{Meta: m(u), Text: "Well."}),
			made(start+30, &frame.OutputAudio{Meta: m(u)}),
			made(start+40, &frame.BotStartedSpeaking{Meta: m(u)}),
		}
	}
	var got []frame.TurnMetrics
	tr := turns.New()
	session.NewLatency(tr, func(tm frame.TurnMetrics) { got = append(got, tm) })
	hops := []pipeline.Hop{
		made(500, &frame.UserStoppedSpeaking{Meta: m(2), At: at(300)}),
		made(1200, &frame.Endpoint{Meta: m(2), Delay: ms(700), Hold: ms(600)}),
		made(1200, &frame.Transcript{Meta: m(2), Text: "a pizza and", Final: true}),
	}
	hops = append(hops, answer(1210, 2)...)
	hops = append(hops,
		// A cough over the answer: paused 230 ms, resumed; a backchannel
		// (its own stop opens a turn that is never answered).
		made(2000, &frame.BargeIn{Outcome: frame.BargeInResumed, Paused: ms(230)}),
		made(2500, &frame.UserStoppedSpeaking{Meta: m(2), At: at(2000)}),
		made(2600, &frame.BargeIn{Outcome: frame.BargeInResumed, Paused: ms(120)}),
		// "Stop": paused 180 ms, then the answer is cut off.
		made(4000, &frame.BargeIn{Meta: m(3), Outcome: frame.BargeInInterrupted, Paused: ms(180)}),
		made(4000, &frame.Interruption{Meta: m(3)}),
		made(4600, &frame.UserStoppedSpeaking{Meta: m(3), At: at(4300)}),
		made(4650, &frame.Endpoint{Meta: m(3), Delay: ms(50)}),
		made(4650, &frame.Transcript{Meta: m(3), Text: "stop", Final: true}),
	)
	hops = append(hops, answer(4700, 3)...)
	for _, h := range hops {
		tr.OnHop(h)
	}
	want := []frame.TurnMetrics{{
		Turn: 2, Endpointing: ms(200), STTFinal: ms(900), LLMFirst: ms(920), SentenceTTS: ms(930),
		TTSFirst: ms(940), AudioOut: ms(950), VoiceToVoice: ms(950),
		EndpointDelay: ms(700), Hold: ms(600),
	}, {
		Turn: 3, Endpointing: ms(300), STTFinal: ms(350), LLMFirst: ms(410), SentenceTTS: ms(420),
		TTSFirst: ms(430), AudioOut: ms(440), VoiceToVoice: ms(440),
		EndpointDelay: ms(50), BargeIn: frame.BargeInInterrupted, Pause: ms(180),
		Resumes: 2, ResumedPause: ms(350),
	}}
	if len(got) != len(want) {
		t.Fatalf("reported %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d:\n %+v, want\n %+v", i, got[i], want[i])
		}
	}
}
