package session_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/agent"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/transport"
)

// timedWriter records when each write happened and how many samples it
// carried.
type timedWriter struct {
	start time.Time
	mu    sync.Mutex
	at    []time.Duration
	n     []int
}

func (w *timedWriter) WriteAudio(pcm []int16) error {
	w.mu.Lock()
	w.at = append(w.at, time.Since(w.start))
	w.n = append(w.n, len(pcm))
	w.mu.Unlock()
	return nil
}

// sent returns the samples written in [from, to).
func (w *timedWriter) sent(from, to time.Duration) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := 0
	for i, at := range w.at {
		if at >= from && at < to {
			s += w.n[i]
		}
	}
	return s
}

// bargeIn runs the turn-taking stage, the agent, synthesis (100 ms a word)
// and the real playout: the user asks by text, and 500 ms into the
// 1.5 s answer speaks over it with the frames of steps (a VAD and
// recognizer played by the test). It returns the writer and the recorded
// answer.
func bargeIn(t *testing.T, steps func(push func(frame.Frame))) (*timedWriter, agents.Message) {
	const answer = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen."
	model, err := scripted.New(scripted.Config{Fallback: answer})
	if err != nil {
		t.Fatal(err)
	}
	bot, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "bot", Model: model})
	if err != nil {
		t.Fatal(err)
	}
	stage, err := agent.New(agent.Config{Agents: []agents.Runnable{bot}})
	if err != nil {
		t.Fatal(err)
	}
	synth, err := tts.NewProcessor(wordSynth{}, tts.ProcessorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	turns, err := turntaking.New(turntaking.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := &timedWriter{start: time.Now()}
	play := transport.NewPlayout(w, transport.PlayoutConfig{Format: frame.Mono16k})
	p := pipeline.New(pipeline.Options{}, turns, stage, synth, play)
	ctx := context.Background()
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	push := func(f frame.Frame) {
		if tr, ok := f.(*frame.Transcript); ok {
			tr.Turn = p.Turn()
		}
		p.Push(ctx, f)
		synctest.Wait()
	}
	push(&frame.Transcript{Text: "count for me", Final: true, Typed: true})
	time.Sleep(505 * time.Millisecond) // between two playout ticks
	steps(push)
	time.Sleep(3 * time.Second)
	p.Push(ctx, &frame.End{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h := stage.History()
	if len(h) < 2 {
		t.Fatalf("history %+v", h)
	}
	return w, h[1]
}

// TestBargeInFalseInterruptionResumes: a cough 500 ms into the answer
// pauses the playout at once and resumes it 232 ms later (200 ms after
// the last voiced chunk); every sample is written once, and the history
// keeps the whole answer.
func TestBargeInFalseInterruptionResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, got := bargeIn(t, func(push func(frame.Frame)) {
			push(&frame.UserStartedSpeaking{})
			time.Sleep(32 * time.Millisecond)
			push(&frame.UserSpeaking{Voiced: 256 * time.Millisecond})
			time.Sleep(500 * time.Millisecond)
			push(&frame.UserStoppedSpeaking{})
			time.Sleep(50 * time.Millisecond)
			push(&frame.Transcript{Final: true})
		})
		// Paused at 505 ms, resumed at 737 ms: nothing written between.
		if n := w.sent(506*time.Millisecond, 737*time.Millisecond); n != 0 {
			t.Errorf("%d samples written while paused", n)
		}
		if n := w.sent(737*time.Millisecond, 760*time.Millisecond); n == 0 {
			t.Error("playout did not resume within 30 ms of the resume")
		}
		if n := w.sent(0, time.Hour); n != 15*1600 {
			t.Errorf("wrote %d samples, want %d (each once)", n, 15*1600)
		}
		const want = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen."
		if got.Interrupted || got.Content != want {
			t.Errorf("answer recorded as %+v, want all of it", got)
		}
	})
}

// TestBargeInStopInterrupts: "stop" 500 ms into the answer pauses it at
// once and cancels it when recognized (before the resume); the history
// keeps what was played before the pause (the 100 ms lead the client had
// included), and the next answer plays in full.
func TestBargeInStopInterrupts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, got := bargeIn(t, func(push func(frame.Frame)) {
			push(&frame.UserStartedSpeaking{})
			time.Sleep(32 * time.Millisecond)
			push(&frame.UserSpeaking{Voiced: 256 * time.Millisecond})
			time.Sleep(150 * time.Millisecond)
			push(&frame.Transcript{Text: "stop"}) // at 687 ms
			time.Sleep(500 * time.Millisecond)
			push(&frame.UserStoppedSpeaking{})
			time.Sleep(50 * time.Millisecond)
			push(&frame.Transcript{Text: "stop", Final: true}) // answered at 1237 ms
		})
		if n := w.sent(506*time.Millisecond, 1237*time.Millisecond); n != 0 {
			t.Errorf("%d samples written after the pause", n)
		}
		if n := w.sent(1237*time.Millisecond, time.Hour); n != 15*1600 {
			t.Errorf("the answer to \"stop\": %d samples, want %d", n, 15*1600)
		}
		// 600 ms sent by the pause: the first sentence and a fifth of
		// the second's characters.
		const want = "One two three four five. Six"
		if !got.Interrupted || got.Content != want {
			t.Errorf("answer recorded as %+v, want %q interrupted", got, want)
		}
	})
}
