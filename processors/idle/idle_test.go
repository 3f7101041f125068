package idle_test

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
	"github.com/voiced-dev/voiced/processors/idle"
)

// speaker stands for synthesis and playout: it "plays" each prompt for a
// second, telling the idle stage upstream, and records what it was asked
// to say and when. It plays nothing of a TextOnly answer.
type speaker struct {
	start time.Time
	mu    sync.Mutex
	said  []string
	rt    pipeline.Runtime
	shown bool
}

func (s *speaker) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	s.rt = rt
	return nil
}

func (s *speaker) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.LLMResponseStart:
		s.shown = f.TextOnly
	case *frame.LLMText:
		if s.shown {
			break
		}
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

func TestIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		push map[time.Duration]frame.Frame
		want string
	}{{
		name: "prompts then goodbye",
		want: "Still there?@10s Still there?@21s Bye.@32s",
	}, {
		// The user speaks at 15 s: the count starts over.
		name: "user answers",
		push: map[time.Duration]frame.Frame{
			15 * time.Second: &frame.UserStartedSpeaking{},
			16 * time.Second: &frame.UserStoppedSpeaking{},
		},
		want: "Still there?@10s Still there?@26s Still there?@37s Bye.@48s",
	}, {
		// A typed message at 5 s answered in text only: nothing is
		// heard, and the clock runs again once the answer is written.
		name: "text-only answer",
		push: map[time.Duration]frame.Frame{
			5 * time.Second:                    &frame.Transcript{Text: "hi", Final: true, Typed: true, TextOnly: true},
			5*time.Second + time.Millisecond:   &frame.LLMResponseStart{TextOnly: true},
			5*time.Second + 2*time.Millisecond: &frame.LLMText{Text: "Shown."},
			5*time.Second + 3*time.Millisecond: &frame.LLMResponseEnd{},
		},
		want: "Still there?@15.003s Still there?@26.003s Bye.@37.003s",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sp := &speaker{start: time.Now()}
				var ended []string
				p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
					if e, ok := f.(*frame.End); ok {
						ended = append(ended, e.Reason)
					}
				}}, idle.New(idle.Config{Prompt: "Still there?", Goodbye: "Bye.", Timeout: 10 * time.Second}), sp)
				ctx := context.Background()
				done := make(chan error)
				go func() { done <- p.Run(ctx) }()
				for at, f := range tc.push {
					go func() {
						time.Sleep(at)
						p.Push(ctx, f)
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
				if fmt.Sprint(ended) != "[user idle]" {
					t.Errorf("End reasons %v", ended)
				}
			})
		})
	}
}
