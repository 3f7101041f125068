package agents_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// fakeModel answers from a list, one word per 100 ms, and records requests.
type fakeModel struct {
	mu      sync.Mutex
	answers []string
	reqs    []agents.Request
	causes  []error
}

func (m *fakeModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		m.mu.Lock()
		m.reqs = append(m.reqs, req)
		answer := m.answers[0]
		m.answers = m.answers[1:]
		m.mu.Unlock()
		for _, w := range strings.SplitAfter(answer, " ") {
			select {
			case <-ctx.Done():
				m.mu.Lock()
				m.causes = append(m.causes, context.Cause(ctx))
				m.mu.Unlock()
				yield(agents.Event{}, context.Cause(ctx))
				return
			case <-time.After(100 * time.Millisecond):
			}
			if !yield(agents.Event{Text: w}, nil) {
				return
			}
		}
	}
}

// speaker stands in for TTS and playout: it reports each sentence as spoken
// (upstream) 50 ms after its last word arrives, unless interrupted.
type speaker struct {
	rt   pipeline.Runtime
	out  pipeline.Emitter
	buf  strings.Builder
	mu   sync.Mutex
	text []string
}

func (s *speaker) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.rt, s.out = rt, out
	return nil
}

func (s *speaker) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	if l, ok := f.(*frame.LLMText); ok {
		s.buf.WriteString(l.Text)
		if strings.HasSuffix(strings.TrimSpace(l.Text), ".") {
			sentence := strings.TrimSpace(s.buf.String())
			s.buf.Reset()
			turn := l.Turn
			time.AfterFunc(50*time.Millisecond, func() {
				if s.rt.Turn() == turn {
					s.out.EmitUp(&frame.BotSpoke{Meta: frame.Meta{Turn: turn}, Text: sentence})
				}
			})
		}
	}
	if _, ok := f.(*frame.Interruption); ok {
		s.buf.Reset()
	}
	out.Pass(f)
	return nil
}

// interrupter interrupts on a transcript "STOP" (like the VAD does on speech).
type interrupter struct{ rt pipeline.Runtime }

func (i *interrupter) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	i.rt = rt
	return nil
}

func (i *interrupter) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if t, ok := f.(*frame.Transcript); ok && t.Text == "STOP" {
		i.rt.Interrupt("test")
		out.Emit(&frame.Interruption{})
		return nil
	}
	out.Pass(f)
	return nil
}

func TestStageRecordsOnlyWhatWasSpoken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		model := &fakeModel{answers: []string{
			"First sentence here. Second one is long and will be cut.",
			"Okay.",
		}}
		st, err := agents.NewStage(agents.StageConfig{Agent: agents.Agent{Name: "a", System: "be brief", Model: model}})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var texts []string
		sink := func(f frame.Frame) {
			if l, ok := f.(*frame.LLMText); ok {
				mu.Lock()
				texts = append(texts, l.Text)
				mu.Unlock()
			}
		}
		p := pipeline.New(pipeline.Options{Sink: sink}, &interrupter{}, st, &speaker{})
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()

		p.Push(ctx, &frame.Transcript{Text: "partial", Final: false})
		p.Push(ctx, &frame.Transcript{Text: "tell me things", Final: true})
		// Words every 100 ms: "First sentence here." ends at 300 ms and is
		// spoken at 350 ms; we interrupt at 650 ms, mid second sentence
		// (between the words at 600 and 700 ms).
		time.Sleep(650 * time.Millisecond)
		p.Push(ctx, &frame.Transcript{Text: "STOP"})
		synctest.Wait()
		p.Push(ctx, &frame.Transcript{Text: "and now", Final: true})
		time.Sleep(time.Second)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		h := st.History()
		want := []agents.Message{
			{Role: agents.RoleUser, Content: "tell me things"},
			{Role: agents.RoleAssistant, Content: "First sentence here.", Interrupted: true},
			{Role: agents.RoleUser, Content: "and now"},
			{Role: agents.RoleAssistant, Content: "Okay."},
		}
		if len(h) != len(want) {
			t.Fatalf("history = %+v, want %+v", h, want)
		}
		for i := range want {
			if h[i].Role != want[i].Role || h[i].Content != want[i].Content || h[i].Interrupted != want[i].Interrupted {
				t.Fatalf("history[%d] = %+v, want %+v", i, h[i], want[i])
			}
		}
		// The second request carried what was heard, and the system prompt.
		if len(model.reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(model.reqs))
		}
		r := model.reqs[1]
		if r.System != "be brief" || len(r.Messages) != 3 || r.Messages[1].Content != "First sentence here." || r.Messages[2].Content != "and now" {
			t.Fatalf("second request = %+v", r)
		}
		if len(model.causes) != 1 || !errors.Is(model.causes[0], pipeline.ErrInterrupted) {
			t.Fatalf("model cancellations = %v, want one ErrInterrupted", model.causes)
		}
		// Nothing of the interrupted answer after "Second one" reached the end.
		got := strings.Join(texts, "")
		if got != "First sentence here. Second one is Okay." {
			t.Fatalf("text out = %q", got)
		}
	})
}

func TestStageNeedsModel(t *testing.T) {
	if _, err := agents.NewStage(agents.StageConfig{}); err == nil {
		t.Fatal("NewStage without a model succeeded")
	}
}
