package deepgram

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/stt/deepgram/deepgramtest"
)

// TestSessionStartOpensTheConnection: the recognition stage warms the
// recognizer when its session starts, so the first utterance streams over
// a connection whose handshake was over before the user spoke; using it
// dials the next one.
func TestSessionStartOpensTheConnection(t *testing.T) {
	srv := deepgramtest.New(t, deepgramtest.Config{})
	r := newRec(t, srv, Config{})
	final := make(chan struct{}, 1)
	proc := stt.NewProcessor(r, stt.ProcessorConfig{})
	p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
		if tr, ok := f.(*frame.Transcript); ok && tr.Final {
			select {
			case final <- struct{}{}:
			default:
			}
		}
	}}, proc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Nobody has spoken: the connection is opened all the same.
	waitFor(t, func() bool { c := srv.Conns(); return len(c) == 1 && !c[0].Opened.IsZero() })
	spoke := time.Now()
	push := func(f frame.Frame) {
		if err := p.Push(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	push(&frame.UserStartedSpeaking{})
	for i := range 20 {
		push(&frame.InputAudio{Format: frame.Mono16k, Samples: slices.Repeat([]int16{int16(i + 1)}, 320)})
	}
	push(&frame.UserStoppedSpeaking{At: time.Now()})
	select {
	case <-final:
	case <-time.After(10 * time.Second):
		t.Fatal("no final transcript")
	}
	c := srv.Conns()
	if !c[0].Opened.Before(spoke) || c[0].FirstAudio.Before(spoke) || c[0].Samples == 0 {
		t.Fatalf("the utterance did not stream over the connection opened ahead: opened %v, audio from %v (spoke at %v), %d samples",
			c[0].Opened, c[0].FirstAudio, spoke, c[0].Samples)
	}
	// The next utterance's connection is dialed once this one is taken.
	waitFor(t, func() bool { c := srv.Conns(); return len(c) == 2 && !c[1].Opened.IsZero() })
	if c := srv.Conns(); c[1].Samples != 0 {
		t.Fatalf("the spare got audio: %+v", c[1])
	}
}
