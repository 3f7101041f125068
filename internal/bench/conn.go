package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// frameDur is the length of each fed input frame.
const frameDur = 20 * time.Millisecond

// feeder pushes 20 ms input frames into a pipeline on the wall clock, like
// a client's microphone: frame i (audio from i*20 ms) is pushed when all of
// it has arrived, at start+(i+1)*20 ms. It is used by one goroutine.
type feeder struct {
	p     transport.Pusher
	start time.Time
	n     int
	timer *time.Timer
	// pushed[i] is when frame i was pushed.
	pushed []time.Time
}

// push waits until the next frame is due and pushes pcm (which must stay
// unmodified: the pipeline shares it). It returns the push time.
func (f *feeder) push(ctx context.Context, pcm []int16) (time.Time, error) {
	due := f.start.Add(time.Duration(f.n+1) * frameDur)
	if wait := time.Until(due); wait > 0 {
		if f.timer == nil {
			f.timer = time.NewTimer(wait)
		} else {
			f.timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-f.timer.C:
		}
	}
	a := &frame.InputAudio{Meta: frame.Meta{PTS: time.Duration(f.n) * frameDur}, Format: frame.Mono16k, Samples: pcm}
	f.n++
	now := time.Now()
	f.pushed = append(f.pushed, now)
	return now, f.p.Push(ctx, a)
}

// pushedAt returns when the frame with media time pts was pushed.
func (f *feeder) pushedAt(pts time.Duration) time.Time {
	i := int(pts / frameDur)
	if i < 0 || i >= len(f.pushed) {
		return time.Time{}
	}
	return f.pushed[i]
}

// newConn returns an in-memory transport.Session at 16 kHz mono both ways:
// Feed runs feed with a feeder starting at start, the output is written to
// w through a real transport.Playout, and Close makes Feed return.
func newConn(id string, start time.Time, w transport.AudioWriter, obs pipeline.Observer,
	feed func(ctx context.Context, f *feeder) error) (*transport.Session, error) {
	in, err := transport.NewInput(frame.Mono16k, frame.Mono16k)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	closed := make(chan struct{})
	var once sync.Once
	return &transport.Session{
		ID: id, In: frame.Mono16k, Out: frame.Mono16k,
		Input:    in,
		Output:   transport.NewPlayout(w, transport.PlayoutConfig{}),
		Observer: obs,
		Feed: func(ctx context.Context, p transport.Pusher) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-closed:
					cancel()
				case <-ctx.Done():
				}
			}()
			return feed(ctx, &feeder{p: p, start: start})
		},
		Notify: func(frame.Frame) {},
		Close:  func(error) { once.Do(func() { close(closed) }) },
	}, nil
}

// tone returns n samples of a steady voiced-sounding tone at about -15 dBFS.
func tone(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		t := float64(i) / 16000
		pcm[i] = int16(6000*math.Sin(2*math.Pi*170*t) + 3000*math.Sin(2*math.Pi*340*t))
	}
	return pcm
}
