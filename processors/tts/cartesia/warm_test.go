package cartesia

import (
	"context"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/tts/cartesia/cartesiatest"
)

// TestSessionStartOpensTheConnection: the synthesis stage warms the
// synthesizer when its session starts, so the first sentence goes over a
// connection whose handshake was over before there was anything to say;
// the next sentence goes over the same one.
func TestSessionStartOpensTheConnection(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{})
	s := newSynth(t, srv, Config{SampleRate: 16000})
	proc, err := tts.NewProcessor(s, tts.ProcessorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	spoken := make(chan struct{}, 4)
	p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
		if a, ok := f.(*frame.OutputAudio); ok && a.Spoken != "" {
			spoken <- struct{}{}
		}
	}}, proc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var said []time.Time
	for _, text := range []string{"Hello there.", "How can I help?"} {
		// A connection is open (and nothing else is dialed) before the
		// sentence is said.
		waitFor(t, func() bool { return srv.Conns() == 1 })
		said = append(said, time.Now())
		for _, f := range []frame.Frame{&frame.LLMResponseStart{}, &frame.LLMText{Text: text}, &frame.LLMResponseEnd{}} {
			if err := p.Push(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-spoken:
		case <-time.After(10 * time.Second):
			t.Fatalf("%q not spoken", text)
		}
	}
	got := srv.Requests()
	if len(got) != 2 {
		t.Fatalf("requests %+v", got)
	}
	for i, g := range got {
		if g.Conn != 1 || !g.Opened.Before(said[0]) || g.Asked.Before(said[i]) {
			t.Errorf("sentence %d went over connection %d, opened %v, asked %v; it was said at %v: want connection 1, opened before",
				i, g.Conn, g.Opened, g.Asked, said[i])
		}
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
