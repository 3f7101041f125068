package pipeline_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// speakerStage emits the bot's and the user's speaking events on its own
// goroutine when told to, as an output stage and a detector do.
type speakerStage struct {
	out  pipeline.Emitter
	emit chan frame.Frame
}

func (s *speakerStage) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.out = out
	rt.Go(func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case f := <-s.emit:
				s.out.EmitUp(f)
			}
		}
	})
	return nil
}

func (s *speakerStage) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
}

// TestStatePublishedAtCreation: the state changes as the event is created,
// even while the stages it must travel through are stuck in a long call.
func TestStatePublishedAtCreation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		busy := pipeline.ProcessorFunc(func(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
			if _, ok := f.(*frame.LLMText); ok {
				<-release // a long synthesis call
			}
			out.Pass(f)
			return nil
		})
		sp := &speakerStage{emit: make(chan frame.Frame)}
		p := pipeline.New(pipeline.Options{}, pass, busy, sp)
		st := p.State()
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		if st.BotSpeaking() || st.UserSpeaking() {
			t.Fatal("a new conversation is not silent")
		}
		p.Push(ctx, &frame.LLMText{Text: "a long sentence"})
		synctest.Wait() // busy is inside its call

		start := time.Now()
		sp.emit <- &frame.BotStartedSpeaking{}
		synctest.Wait()
		if !st.BotSpeaking() {
			t.Fatal("BotSpeaking is false after BotStartedSpeaking was emitted, behind a busy stage")
		}
		if at, ok := st.BotSpeakingSince(); !ok || !at.Equal(start) {
			t.Errorf("BotSpeakingSince = %v, %v; want %v", at, ok, start)
		}
		sp.emit <- &frame.BotStoppedSpeaking{}
		synctest.Wait()
		if st.BotSpeaking() {
			t.Fatal("BotSpeaking is true after BotStoppedSpeaking")
		}
		p.Push(ctx, &frame.UserStartedSpeaking{})
		synctest.Wait()
		if !st.UserSpeaking() {
			t.Error("UserSpeaking is false after UserStartedSpeaking")
		}
		p.Push(ctx, &frame.UserStoppedSpeaking{})
		synctest.Wait()
		if st.UserSpeaking() {
			t.Error("UserSpeaking is true after UserStoppedSpeaking")
		}
		close(release)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
