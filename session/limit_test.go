package session_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/sessionlimit"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/transport"
)

// TestSessionEndsPolitely runs whole sessions through the real playout:
// at the maximum length, and when the server drains, the user hears the
// warning and the goodbye (as they reach the client), and the session is
// closed with the reason's code; meanwhile the load meter and OnInputLateness
// are told how long input audio waited at the detector.
func TestSessionEndsPolitely(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain time.Duration
		said  string
		code  string
		is    error
	}{
		{name: "max duration", said: "Soon.@1m30s Bye.@2m0s", code: "max_duration"},
		{name: "drain", drain: 40 * time.Second, said: "Restarting.@40s", code: "shutting_down", is: transport.ErrShuttingDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				model, err := scripted.New(scripted.Config{Fallback: "hello"})
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				load := transport.NewLoadMeter(transport.LoadConfig{})
				drain := make(chan struct{})
				start := time.Now()
				var said []string
				late := map[string]int{} // OnInputLateness calls by session ID
				heard := pipeline.ObserverFunc(func(h pipeline.Hop) {
					if a, ok := h.Frame.(*frame.BotSpoke); ok && h.First {
						mu.Lock()
						said = append(said, fmt.Sprintf("%s@%v", a.Text, time.Since(start).Round(time.Second)))
						mu.Unlock()
					}
				})
				b := &session.Builder{VAD: silentVAD{}, STT: noSTT{t}, TTS: wordSynth{}, Model: model,
					Draining: drain, Load: load, Observers: []pipeline.Observer{heard},
					OnInputLateness: func(id string, d time.Duration) {
						mu.Lock()
						late[id]++
						mu.Unlock()
					},
					Config: session.Config{Limit: sessionlimit.Config{
						MaxDuration: 2 * time.Minute, WarnBefore: 30 * time.Second,
						Warning: "Soon.", Goodbye: "Bye.", ShutdownGoodbye: "Restarting.",
					}}}
				in, _ := transport.NewInput(frame.Mono16k, frame.Mono16k)
				w := &nullWriter{}
				var closedWith []error
				s := &transport.Session{
					ID: "s", Kind: "test", In: frame.Mono16k, Out: frame.Mono16k,
					Input:  in,
					Output: transport.NewPlayout(w, transport.PlayoutConfig{Format: frame.Mono16k}),
					Feed: func(ctx context.Context, p transport.Pusher) error {
						tick := time.NewTicker(20 * time.Millisecond)
						defer tick.Stop()
						for {
							select {
							case <-ctx.Done():
								return ctx.Err()
							case <-tick.C:
							}
							if err := p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: make([]int16, 320)}); err != nil {
								return err
							}
						}
					},
					Notify: func(frame.Frame) {},
					Close:  func(err error) { closedWith = append(closedWith, err) },
				}
				if tc.drain > 0 {
					go func() {
						time.Sleep(tc.drain)
						close(drain)
					}()
				}
				err = b.Run(context.Background(), s)
				mu.Lock()
				got := strings.Join(said, " ")
				mu.Unlock()
				if got != tc.said {
					t.Errorf("said %q, want %q", got, tc.said)
				}
				if !errors.Is(err, transport.ErrEnded) || transport.ErrorCode(err) != tc.code || (tc.is != nil && !errors.Is(err, tc.is)) {
					t.Errorf("Run = %v (code %q), want code %q", err, transport.ErrorCode(err), tc.code)
				}
				if !transport.Expected(err) {
					t.Errorf("a polite end is not Expected: %v", err)
				}
				if len(closedWith) == 0 || closedWith[0] == nil || transport.ErrorCode(closedWith[0]) != tc.code {
					t.Errorf("closed with %v", closedWith)
				}
				if l := load.Load(); l.Frames == 0 {
					t.Errorf("load meter saw no input frames")
				}
				mu.Lock()
				if len(late) != 1 || late["s"] < 100 {
					t.Errorf("OnInputLateness calls by session: %v, want only s's, one per input frame", late)
				}
				mu.Unlock()
			})
		})
	}
}
