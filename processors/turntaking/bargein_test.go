package turntaking_test

import (
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/turntaking"
)

// TestPauseGolden: pause first, decide after. Speech over the bot pauses
// its playout at once; a false interruption resumes it FalseInterruptionTimeout
// after the last voiced chunk; a real one (or a stop word) interrupts.
func TestPauseGolden(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name  string
		cfg   turntaking.Config
		steps []step
		want  string
		turn  uint32
	}{{
		// "stop" is short (256 ms voiced, under MinDuration) but
		// always interrupts, as soon as it is recognized; said alone,
		// it is held for the rest of what the user has to say (Hold).
		name: "stop word interrupts at once",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(168*time.Millisecond, interim("stop")),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("stop")),
		},
		want: "Pause@1000 Start Barge(interrupted,200) Int(2) interim(stop) Stop EP(1050+1000) Final(stop)@2750 End",
		turn: 2,
	}, {
		// The answer resumed, then the recognizer heard "no": the
		// speech is an interruption after all.
		name: "late stop word after the resume",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("no")),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Barge(interrupted,232) Int(2) EP(1050+1000) Final(no)@2582 End",
		turn: 2,
	}, {
		// Voice after a resume pauses again; the pauses add up.
		name: "speech goes on after a resume, then qualifies",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(268*time.Millisecond, speaking(450)),
			wait(50*time.Millisecond, interim("tell me more")),
		},
		want: "Pause@1000 Start Resume(232)@1232 Pause@1300 Barge(interrupted,282) Int(2) interim(tell me more) End",
		turn: 2,
	}, {
		name: "a cough over the bot: resumed within the timeout",
		cfg:  turntaking.Config{FalseInterruptionTimeout: 150 * time.Millisecond},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(64*time.Millisecond, speaking(288)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("")),
		},
		want: "Pause@1000 Start Resume(214)@1214 Stop Barge(resumed,214) Back() End",
		turn: 1,
	}, {
		// Speech long enough to be words stays paused until the
		// recognizer's final: only backchannels, so it resumes.
		name: "backchannel words never interrupt",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(600)),
			wait(0, interim("mm-hm")),
			wait(100*time.Millisecond, speaking(700)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("mm-hm yeah right")),
		},
		want: "Pause@1000 Start interim(mm-hm) Stop Resume(682)@1682 Barge(resumed,682) Back(mm-hm yeah right) End",
		turn: 1,
	}, {
		// Long speech and no final: resumed FinalWait after the stop.
		name: "long speech, no final: resumed after final_wait",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, speaking(600)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
		},
		want: "Pause@1000 Start Stop Resume(1100)@2100 End",
		turn: 1,
	}, {
		name: "resume off: the bot talks on while the speech is judged",
		cfg:  turntaking.Config{ResumeFalseInterruption: &off},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("")),
		},
		want: "Start Stop Barge(resumed,0) Back() End",
		turn: 1,
	}, {
		name: "immediate: no pause, an interruption",
		cfg:  turntaking.Config{Interruption: turntaking.Immediate},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
		},
		want: "Int(2) Start End",
		turn: 2,
	}, {
		// A busy recognizer: "wait" (short, resumed on the stop)
		// came out of it as "way", after the next speech ("stop
		// please") had begun. It is judged on its own, a backchannel,
		// and the speech after it still interrupts.
		name: "a late word of earlier speech does not judge the next",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(268*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(68*time.Millisecond, of(1, final("way"))),
			wait(100*time.Millisecond, speaking(512)),
			wait(100*time.Millisecond, interim("stop please")),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Pause@1400 Start Barge(resumed,232) Back(way) Barge(interrupted,300) Int(2) interim(stop please) End",
		turn: 2,
	}, {
		// The same, heard right: the late stop word interrupts, and
		// starts the user's turn, which goes on while they speak.
		name: "a late stop word of earlier speech interrupts",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(268*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(68*time.Millisecond, of(1, final("wait"))),
			wait(200*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, of(2, final("stop please"))),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Pause@1400 Start Barge(interrupted,100) Int(2) Stop EP(50+0) Final(wait stop please)@1750 End",
		turn: 2,
	}, {
		// A noise resumed, then speech: the noise's empty final,
		// late, neither judges the speech nor releases a turn.
		name: "a late empty final of a noise",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(268*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(68*time.Millisecond, of(1, final(""))),
			wait(0, interim("tell me")),
			wait(100*time.Millisecond, speaking(512)),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Pause@1400 Start Barge(resumed,232) Back() interim(tell me) Barge(interrupted,200) Int(2) End",
		turn: 2,
	}, {
		name: "never: no pause",
		cfg:  turntaking.Config{Interruption: turntaking.Never},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
		},
		want: "Start End",
		turn: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, last, _ := run(t, tc.cfg, tc.steps)
			if got != tc.want {
				t.Errorf("frames out\n %s\nwant\n %s", got, tc.want)
			}
			if last != tc.turn {
				t.Errorf("turn %d, want %d", last, tc.turn)
			}
		})
	}
}

// TestEndpointGolden: the hold follows how finished the user sounds and
// adapts to how the user pauses.
func TestEndpointGolden(t *testing.T) {
	// A user who pauses 600 and 850 ms inside a sentence: with the hold
	// learnt from the first pause (900 ms), the second does not cut them
	// off; with the fixed 700 ms hold it does.
	slow := []step{
		wait(0, &frame.UserStartedSpeaking{}),
		wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
		wait(50*time.Millisecond, final("I want a pizza and")),
		wait(550*time.Millisecond, &frame.UserStartedSpeaking{}),
		wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
		wait(50*time.Millisecond, final("olives and")),
		wait(800*time.Millisecond, &frame.UserStartedSpeaking{}),
		wait(550*time.Millisecond, &frame.UserStoppedSpeaking{}),
		wait(50*time.Millisecond, final("mushrooms")),
	}
	for _, tc := range []struct {
		name  string
		cfg   turntaking.Config
		steps []step
		want  string
	}{{
		name: "a number being read out is held",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("my number is four one five")),
		},
		want: "Int(2) Start Stop EP(1100+1000) Final(my number is four one five)@1700 End",
	}, {
		name: "a date is not a number being read out",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("book it for june five")),
		},
		want: "Int(2) Start Stop EP(100+0) Final(book it for june five)@700 End",
	}, {
		name:  "the hold adapts to a slow speaker",
		steps: slow,
		want:  "Int(2) Start Stop Int(3) Start Stop Int(4) Start Stop EP(50+0) Final(I want a pizza and olives and mushrooms)@3050 End",
	}, {
		name:  "a fixed hold cuts the slow speaker off",
		cfg:   turntaking.Config{Hold: 700 * time.Millisecond, HoldMax: -1},
		steps: slow,
		want:  "Int(2) Start Stop Int(3) Start Stop EP(750+700) Final(I want a pizza and olives and)@2350 Int(4) Start Stop EP(50+0) Final(mushrooms)@3050 End",
	}, {
		// The user went on 200 ms after a neutral sentence was
		// answered: their next neutral one is held a little; a
		// finished question never is.
		name: "a premature end teaches the stage to wait",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("I went to the shop")),
			wait(200*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("yesterday")),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("what time is it")),
		},
		want: "Int(2) Start Stop EP(100+0) Final(I went to the shop)@700 Int(3) Start Stop EP(250+150) Final(yesterday)@1750 Int(4) Start Stop EP(100+0) Final(what time is it)@3200 End",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, _ := run(t, tc.cfg, tc.steps)
			if got != tc.want {
				t.Errorf("frames out\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	cont := map[string]bool{"and": true, "the": true, "to": true, "um": true}
	for _, tc := range []struct {
		text string
		want turntaking.Completeness
	}{
		{"", turntaking.Neutral},
		{"I would like a pizza", turntaking.Neutral},
		{"I would like a pizza and", turntaking.Unfinished},
		{"take me to the", turntaking.Unfinished},
		{"I want to go to", turntaking.Unfinished},
		{"so um", turntaking.Unfinished},
		{"my number is 4 1 5", turntaking.Unfinished},
		{"it is 555 0134", turntaking.Unfinished},
		{"the code is four", turntaking.Unfinished},
		{"call me at six", turntaking.Neutral},
		{"what time is it", turntaking.Complete},
		{"can you help me", turntaking.Complete},
		{"is it", turntaking.Neutral},
		{"you're open tomorrow?", turntaking.Complete},
		{"where do I go to", turntaking.Unfinished},
	} {
		if got := turntaking.Judge(tc.text, cont); got != tc.want {
			t.Errorf("Judge(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// spotted is a final transcript whose recognizer also spotted words (text
// and milliseconds, in order, back to back).
func spotted(text string, words ...any) *frame.Transcript {
	tr := final(text)
	var at time.Duration
	for i := 0; i+1 < len(words); i += 2 {
		d := time.Duration(words[i+1].(int)) * time.Millisecond
		tr.Spotted = append(tr.Spotted, frame.Word{Text: words[i].(string), Start: at, End: at + d})
		at += d
	}
	return tr
}

// TestSpottedGolden: the recognizer's spotting pass judges speech over the
// bot that its full search misheard: an interrupt word that is most of what
// it spotted interrupts (and is the user's turn); one that is a small part
// of it, among backchannels and fillers, does not.
func TestSpottedGolden(t *testing.T) {
	// Short speech over the bot, resumed on the stop, then its final.
	short := func(f *frame.Transcript) []step {
		return []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, f),
		}
	}
	for _, tc := range []struct {
		name  string
		cfg   turntaking.Config
		steps []step
		want  string
		turn  uint32
	}{{
		// "wait" on a phone line, heard as "lake": spotted as "mm
		// wait uh", the command is 390 of 510 ms. The user's turn is
		// "wait", held for what follows.
		name:  "a misheard command, spotted",
		steps: short(spotted("lake", "mm", 60, "wait", 390, "uh", 60)),
		want:  "Pause@1000 Start Resume(232)@1232 Stop Barge(interrupted,232) Int(2) EP(1050+1000) Final(wait)@2582 End",
		turn:  2,
	}, {
		// "uh huh" spotted as "uh no uh": "no" is 190 of 340 ms, under
		// the 0.7 share: a backchannel.
		name:  "an interrupt word that is not most of the speech",
		steps: short(spotted("some of", "uh", 100, "no", 190, "uh", 50)),
		want:  "Pause@1000 Start Resume(232)@1232 Stop Barge(resumed,232) Back(some of) End",
		turn:  1,
	}, {
		name:  "spotting off",
		cfg:   turntaking.Config{SpotShare: -1},
		steps: short(spotted("lake", "mm", 60, "wait", 390, "uh", 60)),
		want:  "Pause@1000 Start Resume(232)@1232 Stop Barge(resumed,232) Back(lake) End",
		turn:  1,
	}, {
		// The full search's words stand when they say more than a
		// command: the user's turn is what it heard.
		name:  "a spotted command in a longer sentence keeps its words",
		steps: short(spotted("read it off when", "wait", 320, "stop", 340, "mm", 100)),
		want:  "Pause@1000 Start Resume(232)@1232 Stop Barge(interrupted,232) Int(2) EP(50+0) Final(read it off when)@1582 End",
		turn:  2,
	}, {
		// "wait, stop please" split by the detector's stop: the first
		// part (heard as "randy") resumed, its final late, after the
		// second began: spotted, it interrupts.
		name: "the first part of a split command, late",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(268*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(68*time.Millisecond, of(1, spotted("randy", "mm", 60, "wait", 330, "uh", 40))),
			wait(200*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, of(2, final("and green"))),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Pause@1400 Start Barge(interrupted,100) Int(2) Stop EP(50+0) Final(wait and green)@1750 End",
		turn: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, last, _ := run(t, tc.cfg, tc.steps)
			if got != tc.want {
				t.Errorf("frames out\n %s\nwant\n %s", got, tc.want)
			}
			if last != tc.turn {
				t.Errorf("turn %d, want %d", last, tc.turn)
			}
		})
	}
}

func TestSpotWords(t *testing.T) {
	got := turntaking.Config{InterruptWords: []string{"stop"}, Backchannels: []string{"mm", "yeah"}}.SpotWords()
	if strings.Join(got, " ") != "stop mm yeah" {
		t.Errorf("SpotWords = %q", got)
	}
	if got := (turntaking.Config{}).SpotWords(); len(got) != len(turntaking.DefaultInterruptWords)+len(turntaking.DefaultBackchannels) {
		t.Errorf("default SpotWords = %q", got)
	}
}
