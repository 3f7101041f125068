package sessionlimit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/sessionlimit"
)

// speaker stands for synthesis and playout: it "plays" each text for a
// second, telling the stages upstream, and records what it was asked to
// say and when.
type speaker struct {
	start time.Time
	mu    sync.Mutex
	said  []string
	rt    pipeline.Runtime
	shown bool // the answer is TextOnly: nothing of it is played
}

func (s *speaker) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	s.rt = rt
	return nil
}

func (s *speaker) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if f, ok := f.(*frame.LLMResponseStart); ok {
		s.shown = f.TextOnly
	}
	if f, ok := f.(*frame.LLMText); ok && !s.shown {
		s.mu.Lock()
		s.said = append(s.said, fmt.Sprintf("%s@%v", f.Text, time.Since(s.start)))
		s.mu.Unlock()
		out.EmitUp(&frame.BotStartedSpeaking{})
		s.rt.Go(func(context.Context) {
			time.Sleep(time.Second)
			out.EmitUp(&frame.BotStoppedSpeaking{})
		})
	}
	out.Pass(f)
	return nil
}

// TestSessionLimit: the user is warned before the maximum length, the
// answer being given is let finish, and then the bot says goodbye and
// the session ends with the reason; on a drain it says the shutdown
// goodbye.
func TestSessionLimit(t *testing.T) {
	answer := func(text string) []frame.Frame {
		return []frame.Frame{&frame.LLMResponseStart{}, &frame.LLMText{Text: text}, &frame.LLMResponseEnd{}}
	}
	for _, tc := range []struct {
		name   string
		push   map[time.Duration][]frame.Frame
		drain  time.Duration // 0: never
		want   string
		reason string
	}{{
		name:   "warned then ended",
		want:   "Warn.@9m0s Bye.@10m0s",
		reason: sessionlimit.ReasonMaxDuration,
	}, {
		// An answer starts just before the end: it plays out (a second),
		// then the goodbye.
		name:   "answer finishes first",
		push:   map[time.Duration][]frame.Frame{10*time.Minute - 500*time.Millisecond: answer("Sure.")},
		want:   "Warn.@9m0s Sure.@9m59.5s Bye.@10m0.5s",
		reason: sessionlimit.ReasonMaxDuration,
	}, {
		// An answer that never ends (its audio never stops) does not hold
		// the goodbye past AnswerGrace.
		name:   "answer past the grace",
		push:   map[time.Duration][]frame.Frame{10*time.Minute - time.Second: {&frame.LLMResponseStart{}}},
		want:   "Warn.@9m0s Bye.@10m6s",
		reason: sessionlimit.ReasonMaxDuration,
	}, {
		// A text-only answer is never heard: the goodbye waits until it
		// is written (LLMResponseEnd), not for the bot to stop speaking.
		name: "text-only answer",
		push: map[time.Duration][]frame.Frame{
			10*time.Minute - 500*time.Millisecond:  {&frame.LLMResponseStart{TextOnly: true}, &frame.LLMText{Text: "Shown."}},
			10*time.Minute + 1500*time.Millisecond: {&frame.LLMResponseEnd{}},
		},
		want:   "Warn.@9m0s Bye.@10m1.5s",
		reason: sessionlimit.ReasonMaxDuration,
	}, {
		name:   "drain",
		drain:  30 * time.Second,
		want:   "Restarting.@30s",
		reason: sessionlimit.ReasonShutdown,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sp := &speaker{start: time.Now()}
				var ended []string
				drain := make(chan struct{})
				st := sessionlimit.New(sessionlimit.Config{
					MaxDuration: 10 * time.Minute, Warning: "Warn.", Goodbye: "Bye.",
					ShutdownGoodbye: "Restarting.", AnswerGrace: 6 * time.Second,
				}, drain)
				p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
					if e, ok := f.(*frame.End); ok {
						ended = append(ended, e.Reason)
					}
				}}, st, sp)
				ctx := context.Background()
				done := make(chan error)
				go func() { done <- p.Run(ctx) }()
				for at, fs := range tc.push {
					go func() {
						time.Sleep(at)
						for _, f := range fs {
							p.Push(ctx, f)
						}
					}()
				}
				if tc.drain > 0 {
					go func() {
						time.Sleep(tc.drain)
						close(drain)
					}()
				}
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				sp.mu.Lock()
				said := strings.Join(sp.said, " ")
				sp.mu.Unlock()
				if said != tc.want {
					t.Errorf("said %q, want %q", said, tc.want)
				}
				if fmt.Sprint(ended) != "["+tc.reason+"]" || st.Reason() != tc.reason {
					t.Errorf("End reasons %v, Reason() %q", ended, st.Reason())
				}
			})
		})
	}
}
