package elevenlabs

import (
	"context"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs/elevenlabstest"
)

// TestSessionStartOpensTheConnection: the synthesis stage warms the
// synthesizer when its session starts, so the first sentence goes over a
// connection whose handshake was over before there was anything to say,
// and the next sentence over the one dialed after that.
func TestSessionStartOpensTheConnection(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{})
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
	for i, text := range []string{"Hello there.", "How can I help?"} {
		// A connection is open (and nothing else is dialed) before the
		// sentence is said.
		waitFor(t, func() bool { return srv.Conns() == i+1 })
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
	got := srv.Said()
	if len(got) != 2 {
		t.Fatalf("said %+v", got)
	}
	for i, g := range got {
		if g.Conn != i+1 || !g.Opened.Before(said[i]) || g.Asked.Before(said[i]) {
			t.Errorf("sentence %d went over connection %d, opened %v, asked %v; it was said at %v: want connection %d, opened before",
				i, g.Conn, g.Opened, g.Asked, said[i], i+1)
		}
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

// TestEachVoiceKeepsAConnectionWarm: an agent's voice (not the default)
// has its next connection opened once it is used, so its next sentence
// does not pay the handshake either.
func TestEachVoiceKeepsAConnectionWarm(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{Voices: []string{"voice-adam"}})
	s := newSynth(t, srv, Config{})
	var asked []time.Time
	for range 2 {
		waitFor(t, func() bool { return srv.Conns() == len(asked)+min(len(asked), 1) })
		asked = append(asked, time.Now())
		if err := s.Synthesize(context.Background(), "Let me check.", "voice-adam", func([]int16) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	got := srv.Said()
	if len(got) != 2 || got[1].Conn == got[0].Conn || got[1].Voice != "voice-adam" || !got[1].Opened.Before(asked[1]) {
		t.Fatalf("said %+v (the second asked at %v): want the second over another connection, opened before", got, asked[1])
	}
}
