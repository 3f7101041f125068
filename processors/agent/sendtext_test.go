package agent_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/agent"
)

// starts records the LLMResponseStart frames that pass.
type starts struct {
	mu  sync.Mutex
	got []bool // TextOnly of each
}

func (s *starts) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if st, ok := f.(*frame.LLMResponseStart); ok {
		s.mu.Lock()
		s.got = append(s.got, st.TextOnly)
		s.mu.Unlock()
	}
	out.Pass(f)
	return nil
}

// TestStageDeferredAndTextOnly: a deferred message is not answered, and
// reaches the model, after the answer before it, with the next message; a
// text-only answer is opened TextOnly and kept in the history as written,
// though nothing of it was played.
func TestStageDeferredAndTextOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u1, note, u2, u3 := user("hi"), user("my name is Ada"), user("spell my name"), user("thanks")
		hello, spelled := said("clerk", "Hello."), said("clerk", "A-D-A, Ada.")
		model := &expectModel{t: t, steps: []modelStep{
			{want: []agents.Message{u1}, text: "Hello."},
			{want: []agents.Message{u1, hello, note, u2}, text: " A-D-A, Ada. "},
			{want: []agents.Message{u1, hello, note, u2, spelled, u3}, text: "Bye."},
		}}
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "clerk", Model: model})
		if err != nil {
			t.Fatal(err)
		}
		st, err := agent.New(agent.Config{Agents: []agents.Runnable{a}})
		if err != nil {
			t.Fatal(err)
		}
		rec := &starts{}
		p := pipeline.New(pipeline.Options{}, &interrupter{}, st, &speaker{}, rec)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		for _, f := range []*frame.Transcript{
			{Text: u1.Content, Final: true},
			{Text: note.Content, Final: true, Typed: true, Deferred: true},
			{Text: u2.Content, Final: true, Typed: true, TextOnly: true},
			{Text: u3.Content, Final: true, Typed: true},
		} {
			p.Push(ctx, f)
			time.Sleep(time.Second)
			synctest.Wait()
			if f.Deferred {
				want := []agents.Message{u1, hello, note}
				if got := dump(st.History()); got != dump(want) {
					t.Errorf("history with the note\n%s\nwant\n%s", got, dump(want))
				}
			}
		}
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		model.done()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if want := []bool{false, true, false}; len(rec.got) != 3 || rec.got[0] != want[0] || rec.got[1] != want[1] || rec.got[2] != want[2] {
			t.Errorf("answers opened with TextOnly %v, want %v", rec.got, want)
		}
	})
}
