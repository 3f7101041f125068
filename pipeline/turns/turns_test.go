package turns_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/turns"
)

// base is in the future, so that End (at the later of now and the last hop)
// is at the last hop.
var base = time.Date(2100, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }

func made(ms int, f frame.Frame) pipeline.Hop {
	return pipeline.Hop{Frame: f, From: 1, To: 2, At: at(ms), First: true}
}

func m(turn uint32) frame.Meta { return frame.Meta{Turn: turn} }

var kinds = map[turns.Kind]string{
	turns.Opened: "open", turns.Transcribed: "final", turns.LLMStarted: "llm", turns.FirstToken: "token",
	turns.LLMEnded: "llm-end", turns.Sentence: "sentence", turns.FirstAudio: "audio", turns.SentenceEnd: "sentence-end",
	turns.PlayStarted: "play", turns.PlayStopped: "play-end", turns.Underrun: "underrun", turns.Closed: "close",
}

// TestTrackerGolden: an answered spoken turn, an interrupted one, a typed
// one cut by the end of the session.
func TestTrackerGolden(t *testing.T) {
	var got []string
	tr := turns.New(func(e turns.Event) {
		s := fmt.Sprintf("%d:%s@%d", e.Turn.Index, kinds[e.Kind], e.At.Sub(base).Milliseconds())
		switch {
		case e.Kind == turns.Closed:
			s += "(" + e.EndedBy + ")"
		case e.Kind == turns.SentenceEnd && e.Cut:
			s += "(cut)"
		}
		got = append(got, s)
	})
	audio := &frame.OutputAudio{Meta: m(2)}
	hops := []pipeline.Hop{
		made(0, &frame.InputAudio{Meta: m(1)}),
		made(100, &frame.Interruption{Meta: m(2)}),
		made(900, &frame.UserStoppedSpeaking{Meta: m(2), At: at(700)}),
		made(1000, &frame.Transcript{Meta: m(2), Text: "hel"}),
		made(1100, &frame.Transcript{Meta: m(2), Text: "hello", Final: true}),
		made(1150, &frame.LLMResponseStart{Meta: m(2)}),
		made(1200, &frame.LLMText{Meta: m(1), Text: "stale"}),
		made(1300, &frame.LLMText{Meta: m(2), Text: "Hi."}),
		made(1350, &frame.LLMText{Meta: m(2), Text: " More."}),
		made(1400, &frame.TTSText{Meta: m(2), Text: "Hi."}),
		made(1450, &frame.LLMResponseEnd{Meta: m(2)}),
		made(1500, audio),
		{Frame: audio, From: 2, To: 3, At: at(1501)}, // a later hop: ignored
		made(1520, &frame.OutputAudio{Meta: m(2), Spoken: "Hi."}),
		made(1550, &frame.BotStartedSpeaking{Meta: m(2)}),
		made(2500, &frame.BotStoppedSpeaking{Meta: m(2)}),
		made(3000, &frame.Interruption{Meta: m(3)}),
		made(3800, &frame.UserStoppedSpeaking{Meta: m(3), At: at(3600)}),
		made(3900, &frame.Transcript{Meta: m(3), Text: "story", Final: true}),
		made(3950, &frame.LLMResponseStart{Meta: m(3)}),
		made(4100, &frame.LLMText{Meta: m(3), Text: "Once."}),
		made(4200, &frame.TTSText{Meta: m(3), Text: "Once."}),
		made(4300, &frame.OutputAudio{Meta: m(3)}),
		made(4350, &frame.BotStartedSpeaking{Meta: m(3)}),
		made(4600, &frame.Interruption{Meta: m(4), Reason: "user interrupted"}),
		made(4700, &frame.BotStoppedSpeaking{Meta: m(4), Interrupted: true}),
		made(5000, &frame.Transcript{Meta: m(5), Text: "typed", Final: true, Typed: true}),
		// The turn-taking stage cuts whatever was said before answering
		// the typed text: the answer is in turn 6.
		made(5010, &frame.Interruption{Meta: m(6), Reason: "user typed"}),
		made(5050, &frame.LLMResponseStart{Meta: m(6)}),
	}
	for _, h := range hops {
		tr.OnHop(h)
	}
	if end := tr.End(); !end.Equal(at(5050)) {
		t.Errorf("End at %v, want the last hop", end)
	}
	tr.OnHop(made(6000, &frame.UserStoppedSpeaking{Meta: m(6), At: at(5900)}))
	if !tr.End().IsZero() {
		t.Error("a second End did something")
	}
	want := "1:open@700 1:final@1100 1:llm@1150 1:token@1300 1:sentence@1400 1:llm-end@1450 1:audio@1500 " +
		"1:sentence-end@1520 1:play@1550 1:play-end@2500 1:close@2500(answered) " +
		"2:open@3600 2:final@3900 2:llm@3950 2:token@4100 2:sentence@4200 2:audio@4300 2:play@4350 " +
		"2:sentence-end@4600(cut) 2:close@4600(interrupted) " +
		"3:open@5000 3:final@5000 3:llm@5050 3:close@5050(session_end)"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("events\n %s\nwant\n %s", g, want)
	}
	if n := tr.Turns(); n != 3 {
		t.Errorf("Turns = %d, want 3", n)
	}
}
