package session_test

import (
	"context"
	"strings"
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
	"github.com/voiced-dev/voiced/transport"
)

// wordSynth speaks every word for 100 ms of a tone.
type wordSynth struct{}

func (wordSynth) Format() frame.Format { return frame.Mono16k }
func (wordSynth) Synthesize(ctx context.Context, text, _ string, emit func([]int16) error) error {
	for range strings.Fields(text) {
		pcm := make([]int16, 1600)
		for i := range pcm {
			pcm[i] = 3000
		}
		if err := emit(pcm); err != nil {
			return err
		}
	}
	return nil
}

// nullWriter takes what the playout writes.
type nullWriter struct {
	mu sync.Mutex
	n  int
}

func (w *nullWriter) WriteAudio(pcm []int16) error {
	w.mu.Lock()
	w.n += len(pcm)
	w.mu.Unlock()
	return nil
}

// TestHistoryKeepsOnlyPlayedWords runs the agent stage, synthesis and the
// real playout together: the user interrupts 1.25 s into a spoken answer,
// and the conversation history keeps exactly the words played by then.
func TestHistoryKeepsOnlyPlayedWords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		w := &nullWriter{}
		play := transport.NewPlayout(w, transport.PlayoutConfig{Format: frame.Mono16k})
		p := pipeline.New(pipeline.Options{}, stage, synth, play)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()

		p.Push(ctx, &frame.Transcript{Text: "tell me", Final: true})
		// Synthesis is instant here, so playout starts at once: 1.25 s in,
		// twelve words and a half of the fifteen have been played.
		time.Sleep(1250 * time.Millisecond)
		p.Interrupt("user spoke")
		p.Push(ctx, &frame.Interruption{Reason: "user spoke"})
		synctest.Wait()
		p.Push(ctx, &frame.Transcript{Text: "stop", Final: true})
		time.Sleep(100 * time.Millisecond)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		h := stage.History()
		if len(h) < 2 {
			t.Fatalf("history %+v", h)
		}
		got := h[1]
		// The first two sentences played in full (1 s), then half of the
		// third's audio: "Eleven ... fifteen." is cut after about half of
		// its characters (a word counts once half of it was played).
		const want = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen"
		if !got.Interrupted || got.Content != want {
			t.Fatalf("interrupted answer recorded as %+v, want %q", got, want)
		}
	})
}
