package turntaking_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/turntaking"
)

// step is a frame pushed after a pause.
type step struct {
	after time.Duration
	f     frame.Frame
}

func wait(d time.Duration, f frame.Frame) step { return step{d, f} }

// recorder renders the frames leaving the stage with their time.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	out   []string
	turns []uint32 // of released transcripts
}

func (r *recorder) sink(f frame.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := time.Since(r.start).Milliseconds()
	var d string
	switch f := f.(type) {
	case *frame.Interruption:
		d = fmt.Sprintf("Int(%d)", f.Turn)
	case *frame.UserStartedSpeaking:
		d = "Start"
	case *frame.UserStoppedSpeaking:
		d = "Stop"
	case *frame.UserSpeaking:
		d = "Speaking" // must not come out
	case *frame.BotStartedSpeaking, *frame.BotStoppedSpeaking:
		return
	case *frame.End:
		d = "End"
	case *frame.UserBackchannel:
		d = fmt.Sprintf("Back(%s)", f.Text)
	case *frame.PausePlayout:
		d = fmt.Sprintf("Pause@%d", at)
	case *frame.ResumePlayout:
		d = fmt.Sprintf("Resume(%d)@%d", f.Paused.Milliseconds(), at)
	case *frame.BargeIn:
		d = fmt.Sprintf("Barge(%s,%d)", f.Outcome, f.Paused.Milliseconds())
	case *frame.Endpoint:
		d = fmt.Sprintf("EP(%d+%d)", f.Delay.Milliseconds(), f.Hold.Milliseconds())
	case *frame.Transcript:
		if !f.Final {
			d = fmt.Sprintf("interim(%s)", f.Text)
			break
		}
		d = fmt.Sprintf("Final(%s)@%d", f.Text, at)
		r.turns = append(r.turns, f.Turn)
	default:
		d = fmt.Sprintf("%T", f)
	}
	r.out = append(r.out, d)
}

func run(t *testing.T, cfg turntaking.Config, steps []step) (string, uint32, []uint32) {
	t.Helper()
	var out string
	var last uint32
	var turns []uint32
	if cfg.EchoTail == 0 {
		// The cases count voiced audio from the onset unless they are
		// about the echo tail.
		cfg.EchoTail = -1
	}
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{start: time.Now()}
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, mustNew(t, cfg))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		var starts []uint64 // the IDs of the UserStartedSpeaking pushed
		for _, s := range steps {
			time.Sleep(s.after)
			f := s.f
			switch g := f.(type) {
			case *frame.Transcript:
				// As the recognizer stamps it: the current turn,
				// and the utterance it transcribes (the latest, or
				// the one of() named). A copy: cases share steps.
				c := *g
				c.Turn = p.Turn()
				switch k := int(g.Utterance); {
				case g.Typed:
				case k > 0:
					c.Utterance = starts[k-1]
				case len(starts) > 0:
					c.Utterance = starts[len(starts)-1]
				}
				f = &c
			case *frame.UserStartedSpeaking:
				c := *g
				f = &c
			}
			p.Push(ctx, f)
			if _, ok := f.(*frame.UserStartedSpeaking); ok {
				starts = append(starts, f.Header().ID)
			}
			synctest.Wait()
		}
		time.Sleep(5 * time.Second) // every timer runs out
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		out = strings.Join(rec.out, " ")
		turns = rec.turns
		rec.mu.Unlock()
		last = p.Turn()
	})
	return out, last, turns
}

func speaking(ms int) *frame.UserSpeaking {
	return &frame.UserSpeaking{Voiced: time.Duration(ms) * time.Millisecond}
}
func interim(s string) *frame.Transcript { return &frame.Transcript{Text: s} }
func final(s string) *frame.Transcript   { return &frame.Transcript{Text: s, Final: true} }

// of marks tr as a transcript of the k-th utterance of the case (from 1),
// delivered late, after a later one began.
func of(k int, tr *frame.Transcript) *frame.Transcript {
	tr.Utterance = uint64(k)
	return tr
}

// botOn and botOff stand for the output stage's events: new frames each
// time, since the pipeline publishes the bot's state as they are created.
func botOn() frame.Frame  { return &frame.BotStartedSpeaking{} }
func botOff() frame.Frame { return &frame.BotStoppedSpeaking{} }

// mustNew returns a turn-taking stage for a valid config.
func mustNew(t testing.TB, cfg turntaking.Config) *turntaking.Processor {
	t.Helper()
	p, err := turntaking.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTurnGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   turntaking.Config
		steps []step
		want  string
		turn  uint32
	}{{
		name: "bot silent: speech starts a turn at once",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(300*time.Millisecond, interim("hello")),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("hello there")),
		},
		want: "Int(2) Start interim(hello) Stop EP(100+0) Final(hello there)@900 End",
		turn: 2,
	}, {
		// A cough: the detector started (224 ms voiced), it stopped short
		// of MinDuration and the recognizer heard nothing.
		name: "cough over the bot",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(256)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("")),
		},
		want: "Pause@1000 Start Resume(232)@1232 Stop Barge(resumed,232) Back() End",
		turn: 1,
	}, {
		// Residual echo of the bot (it even has a word): its voice stops
		// when the paused playout's lead has played, within EchoTail
		// of the pause, so it never reaches MinDuration and the answer
		// resumes.
		name: "echo over the bot stops with the pause",
		cfg:  turntaking.Config{EchoTail: 300 * time.Millisecond},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(96*time.Millisecond, speaking(328)),
			wait(0, interim("lived")),
			wait(96*time.Millisecond, speaking(424)),
			wait(64*time.Millisecond, speaking(488)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("lived")),
		},
		want: "Pause@1000 Start interim(lived) Resume(488)@1488 Stop Barge(resumed,488) Back(lived) End",
		turn: 1,
	}, {
		// The user's own words go on past the echo tail: they interrupt.
		name: "speech outlives the echo tail",
		cfg:  turntaking.Config{EchoTail: 300 * time.Millisecond},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(0, interim("hang on")),
			wait(100*time.Millisecond, speaking(332)),
			wait(100*time.Millisecond, speaking(432)),
			wait(100*time.Millisecond, speaking(532)),
			wait(100*time.Millisecond, speaking(632)),
		},
		want: "Pause@1000 Start interim(hang on) Barge(interrupted,432) Int(2) End",
		turn: 2,
	}, {
		// After a resume, new speech over the bot is judged afresh: the
		// echo of the resumed answer does not add to what came before.
		name: "speech after a resume starts afresh",
		cfg:  turntaking.Config{EchoTail: 300 * time.Millisecond},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(100*time.Millisecond, speaking(332)),
			wait(100*time.Millisecond, speaking(432)),
			wait(150*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(0, interim("only")),
		},
		want: "Pause@1000 Start Resume(382)@1382 Stop Pause@1982 Start interim(only) Resume(232)@2214 End",
		turn: 1,
	}, {
		// "mm-hm" heard as "and": one short word over the bot is a
		// backchannel whatever the recognizer made of it.
		name: "one short word over the bot is a backchannel",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(100*time.Millisecond, speaking(332)),
			wait(100*time.Millisecond, speaking(432)),
			wait(0, interim("and")),
			wait(100*time.Millisecond, speaking(532)),
			wait(150*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("and")),
		},
		want: "Pause@1000 Start interim(and) Stop Resume(532)@1532 Barge(resumed,532) Back(and) End",
		turn: 1,
	}, {
		// One word said at length, or a second word, is an interruption.
		name: "one long word over the bot interrupts",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(0, interim("hello")),
			wait(100*time.Millisecond, speaking(432)),
			wait(100*time.Millisecond, speaking(632)),
			wait(100*time.Millisecond, speaking(732)),
		},
		want: "Pause@1000 Start interim(hello) Barge(interrupted,332) Int(2) End",
		turn: 2,
	}, {
		name: "a second word interrupts",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(32*time.Millisecond, speaking(232)),
			wait(0, interim("hello")),
			wait(100*time.Millisecond, speaking(432)),
			wait(100*time.Millisecond, speaking(532)),
			wait(0, interim("hello there")),
		},
		want: "Pause@1000 Start interim(hello) Barge(interrupted,232) Int(2) interim(hello there) End",
		turn: 2,
	}, {
		// Long enough, but only backchannel words.
		name: "backchannel over the bot",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(300*time.Millisecond, speaking(500)),
			wait(0, interim("yeah")),
			wait(300*time.Millisecond, speaking(700)),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("mm-hm yeah")),
		},
		want: "Pause@1000 Start Resume(200)@1200 Pause@1300 interim(yeah) Stop Resume(850)@2150 Barge(resumed,1050) Back(mm-hm yeah) End",
		turn: 1,
	}, {
		// Words and duration: the interruption comes when both are there,
		// mid-speech, and the final is answered in the new turn.
		name: "real interruption",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, speaking(320)),
			wait(0, interim("hang on")),
			wait(100*time.Millisecond, speaking(416)),
			wait(400*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("hang on please")),
		},
		want: "Pause@1000 Start interim(hang on) Barge(interrupted,200) Int(2) Stop EP(50+0) Final(hang on please)@1650 End",
		turn: 2,
	}, {
		name: "words not needed",
		cfg:  turntaking.Config{MinWords: -1},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, speaking(400)),
		},
		want: "Pause@1000 Start Barge(interrupted,100) Int(2) End",
		turn: 2,
	}, {
		// The bot stopped talking before the user did: same rules.
		name: "backchannel as the bot ends",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, botOff()),
			wait(400*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("okay")),
		},
		want: "Pause@1000 Start Resume(200)@1200 Stop Barge(resumed,200) Back(okay) End",
		turn: 1,
	}, {
		name: "final late: the interim is answered",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(300*time.Millisecond, interim("what time is it")),
			wait(300*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(time.Second, final("what time is it now")),
		},
		want: "Int(2) Start interim(what time is it) Stop EP(500+0) Final(what time is it)@1100 End",
		turn: 2,
	}, {
		// A busy machine: the recognizer is still working through the
		// user's audio after the stop, revising its hypothesis. The
		// stage waits for its final, not answering the stale interim.
		name: "recognizer behind: its final is waited for",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(300*time.Millisecond, interim("what")),
			wait(300*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(400*time.Millisecond, interim("what is")),
			wait(900*time.Millisecond, interim("what is your")),
			wait(900*time.Millisecond, final("what is your name")),
		},
		want: "Int(2) Start interim(what) Stop interim(what is) interim(what is your) EP(2200+0) Final(what is your name)@2800 End",
		turn: 2,
	}, {
		// ... but not for ever: eight FinalWaits after the stop, the
		// latest interim is answered.
		name: "recognizer behind: the wait is bounded",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(400*time.Millisecond, interim("what")),
			wait(400*time.Millisecond, interim("what is")),
		},
		want: "Int(2) Start Stop interim(what) interim(what is) EP(4000+0) Final(what is)@4600 End",
		turn: 2,
	}, {
		name: "unfinished: held, then answered",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("I want a pizza and")),
		},
		want: "Int(2) Start Stop EP(1100+1000) Final(I want a pizza and)@1700 End",
		turn: 2,
	}, {
		name: "unfinished: the user goes on",
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("I want a pizza um")),
			wait(400*time.Millisecond, &frame.UserStartedSpeaking{}),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("with olives")),
		},
		want: "Int(2) Start Stop Int(3) Start Stop EP(100+0) Final(I want a pizza um with olives)@1700 End",
		turn: 3,
	}, {
		name: "hold disabled",
		cfg:  turntaking.Config{Hold: -1},
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("I want a pizza and")),
		},
		want: "Int(2) Start Stop EP(100+0) Final(I want a pizza and)@700 End",
		turn: 2,
	}, {
		// Typed text cuts off the bot's answer and is answered at once,
		// in the new turn, whatever the policy.
		name: "typed text interrupts and passes",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.Transcript{Text: "hi", Final: true, Typed: true}),
		},
		want: "Int(2) Final(hi)@1000 End",
		turn: 2,
	}, {
		// Deferred text (send-text with run_immediately false) goes
		// on for the conversation: the bot is not cut off.
		name: "deferred typed text does not interrupt",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.Transcript{Text: "note", Final: true, Typed: true, Deferred: true}),
		},
		want: "Final(note)@1000 End",
		turn: 1,
	}, {
		// Typed text while speech over the bot is being judged: the
		// answer is cut once, and that speech is answered, not judged.
		name: "typed text over pending speech",
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, speaking(300)),
			wait(0, &frame.Transcript{Text: "hi", Final: true, Typed: true}),
			wait(400*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("right")),
		},
		want: "Pause@1000 Start Barge(interrupted,100) Int(2) Final(hi)@1100 Stop EP(50+0) Final(right)@1550 End",
		turn: 2,
	}, {
		name: "typed text under Never",
		cfg:  turntaking.Config{Interruption: turntaking.Never},
		steps: []step{
			wait(0, botOn()),
			wait(0, &frame.Transcript{Text: "hi", Final: true, Typed: true}),
		},
		want: "Int(2) Final(hi)@0 End",
		turn: 2,
	}, {
		// Immediate: a cough over the bot cuts it off, no rules asked.
		name: "immediate: any speech over the bot interrupts",
		cfg:  turntaking.Config{Interruption: turntaking.Immediate},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("")),
		},
		want: "Int(2) Start Stop End",
		turn: 2,
	}, {
		name: "immediate: endpointing still holds an unfinished sentence",
		cfg:  turntaking.Config{Interruption: turntaking.Immediate},
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(600*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(100*time.Millisecond, final("I want a pizza and")),
		},
		want: "Int(2) Start Stop EP(1100+1000) Final(I want a pizza and)@1700 End",
		turn: 2,
	}, {
		// Never: the user is heard and answered, the bot is not cut off.
		name: "never: speech over the bot does not interrupt",
		cfg:  turntaking.Config{Interruption: turntaking.Never},
		steps: []step{
			wait(0, botOn()),
			wait(time.Second, &frame.UserStartedSpeaking{}),
			wait(100*time.Millisecond, speaking(600)),
			wait(0, interim("stop right now")),
			wait(400*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("stop right now")),
		},
		want: "Start interim(stop right now) Stop EP(50+0) Final(stop right now)@1550 End",
		turn: 1,
	}, {
		name: "never: speech with the bot silent does not interrupt",
		cfg:  turntaking.Config{Interruption: turntaking.Never},
		steps: []step{
			wait(0, &frame.UserStartedSpeaking{}),
			wait(500*time.Millisecond, &frame.UserStoppedSpeaking{}),
			wait(50*time.Millisecond, final("hello")),
		},
		want: "Start Stop EP(50+0) Final(hello)@550 End",
		turn: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, last, turns := run(t, tc.cfg, tc.steps)
			if got != tc.want {
				t.Errorf("frames out\n %s\nwant\n %s", got, tc.want)
			}
			if last != tc.turn {
				t.Errorf("turn %d, want %d", last, tc.turn)
			}
			for _, n := range turns {
				if n != tc.turn {
					t.Errorf("final transcript stamped turn %d, want %d", n, tc.turn)
				}
			}
		})
	}
}

func TestNewRejectsUnknownPolicy(t *testing.T) {
	_, err := turntaking.New(turntaking.Config{Interruption: "sometimes"})
	if !errors.Is(err, turntaking.ErrConfig) {
		t.Fatalf("New = %v, want ErrConfig", err)
	}
}

// TestInterruptCancelsAnswer: the turn context of a stage busy with the
// answer is cancelled when real speech qualifies, not before.
func TestInterruptCancelsAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		busy := make(chan struct{})
		ans := pipeline.ProcessorFunc(func(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
			if _, ok := f.(*frame.LLMResponseStart); ok {
				close(busy)
				<-ctx.Done()
				cause = context.Cause(ctx)
				return ctx.Err()
			}
			out.Pass(f)
			return nil
		})
		p := pipeline.New(pipeline.Options{}, mustNew(t, turntaking.Config{}), ans)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, botOn())
		p.Push(ctx, &frame.LLMResponseStart{})
		<-busy
		p.Push(ctx, &frame.UserStartedSpeaking{})
		p.Push(ctx, speaking(600))
		synctest.Wait()
		if cause != nil {
			t.Fatalf("answer cancelled (%v) before any word", cause)
		}
		p.Push(ctx, &frame.Transcript{Meta: frame.Meta{Turn: 1}, Text: "no thanks"})
		synctest.Wait()
		if cause != pipeline.ErrInterrupted {
			t.Fatalf("answer cause %v, want ErrInterrupted", cause)
		}
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkTurnInterim(b *testing.B) {
	p := mustNew(b, turntaking.Config{})
	f := &frame.Transcript{Text: "I would like to hear the rest of it"}
	var e nopEmitter
	b.ReportAllocs()
	for b.Loop() {
		p.Process(context.Background(), f, e)
	}
}

type nopEmitter struct{}

func (nopEmitter) Emit(frame.Frame)   {}
func (nopEmitter) EmitUp(frame.Frame) {}
func (nopEmitter) Pass(frame.Frame)   {}

// TestFinalReportedOnce: a recognizer's final passed on unchanged is the same
// frame to observers (so the client sees one transcript, not two).
func TestFinalReportedOnce(t *testing.T) {
	// "hello there" is released at once; "come with" ends in a
	// continuation word and is held first, then released unchanged.
	for _, text := range []string{"hello there", "come with"} {
		t.Run(text, func(t *testing.T) { finalReportedOnce(t, text) })
	}
}

func finalReportedOnce(t *testing.T, text string) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		finals := 0
		obs := pipeline.ObserverFunc(func(h pipeline.Hop) {
			if tr, ok := h.Frame.(*frame.Transcript); ok && tr.Final && h.First {
				mu.Lock()
				finals++
				mu.Unlock()
			}
		})
		var got []frame.Frame
		sink := func(f frame.Frame) {
			mu.Lock()
			got = append(got, f)
			mu.Unlock()
		}
		p := pipeline.New(pipeline.Options{Observers: []pipeline.Observer{obs}, Sink: sink}, mustNew(t, turntaking.Config{}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.UserStartedSpeaking{})
		synctest.Wait()
		p.Push(ctx, &frame.UserStoppedSpeaking{At: time.Now()})
		p.Push(ctx, &frame.Transcript{Text: text, Final: true})
		time.Sleep(2 * time.Second) // past any hold
		synctest.Wait()
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range got {
			if tr, ok := f.(*frame.Transcript); ok && tr.Final && tr.Text == text {
				n++
			}
		}
		if finals != 1 || n != 1 {
			t.Fatalf("final transcript reported %d times, delivered %d times; want 1 and 1", finals, n)
		}
	})
}
