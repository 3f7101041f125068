package bench

import (
	"context"
	"runtime"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// FrameResult is the cost of moving 20 ms audio frames through a chain of
// pass-through stages.
type FrameResult struct {
	Impl     string `json:"impl"` // "voiced" or "channels"
	Stages   int    `json:"stages"`
	InFlight int    `json:"in_flight"`
	Frames   int    `json:"frames"`
	// NsPerFrame is wall time per frame with InFlight frames queued
	// (throughput cost, the peers' figure).
	NsPerFrame     float64 `json:"ns_per_frame"`
	AllocsPerFrame float64 `json:"allocs_per_frame"`
	BytesPerFrame  float64 `json:"bytes_per_frame"`
	// Loaded is each frame's latency from push to leaving the last stage
	// with InFlight frames queued; Idle with one frame at a time.
	Loaded []time.Duration `json:"-"`
	Idle   []time.Duration `json:"-"`
	// LoadedDist and IdleDist summarize them.
	LoadedDist Dist `json:"loaded"`
	IdleDist   Dist `json:"idle"`
}

// chain moves frames through stages; push blocks while inFlight are queued.
type chain interface {
	push(f *frame.InputAudio)
	close()
}

// MeasurePipeline measures voiced's pipeline runtime: frames pushed into n
// pass-through stages (n = 0 is one stage delivering to a sink, the floor)
// until they leave the last one. Each frame is stamped with its push time in
// PTS; the sink records its latency.
func MeasurePipeline(n, frames, inFlight int) FrameResult {
	return measure("voiced", n, frames, inFlight, newPipelineChain)
}

// MeasureChannels measures the baseline: a bare chain of n goroutines
// connected by buffered channels of inFlight, each forwarding frames.
func MeasureChannels(n, frames, inFlight int) FrameResult {
	return measure("channels", n, frames, inFlight, newChannelChain)
}

func measure(impl string, n, frames, inFlight int, mk func(n, inFlight int, done func(*frame.InputAudio)) chain) FrameResult {
	r := FrameResult{Impl: impl, Stages: n, InFlight: inFlight, Frames: frames}
	base := time.Now()
	lat := make([]time.Duration, 0, frames)
	recv := make(chan struct{}, inFlight)
	c := mk(n, inFlight, func(f *frame.InputAudio) {
		lat = append(lat, time.Since(base)-f.PTS)
		recv <- struct{}{}
	})
	defer c.close()
	ring := make([]frame.InputAudio, 2*inFlight+1)
	pcm := make([]int16, 320)
	for i := range ring {
		ring[i] = frame.InputAudio{Format: frame.Mono16k, Samples: pcm}
	}
	run := func(count, window int) time.Duration {
		start := time.Now()
		for i := 0; i < count; i++ {
			if i >= window {
				<-recv
			}
			f := &ring[i%len(ring)]
			f.Meta = frame.Meta{PTS: time.Since(base)}
			c.push(f)
		}
		for i := max(0, count-window); i < count; i++ {
			<-recv
		}
		return time.Since(start)
	}
	run(min(frames, 2000), inFlight) // warm up
	lat = lat[:0]
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	el := run(frames, inFlight)
	runtime.ReadMemStats(&m1)
	r.NsPerFrame = float64(el.Nanoseconds()) / float64(frames)
	r.AllocsPerFrame = float64(m1.Mallocs-m0.Mallocs) / float64(frames)
	r.BytesPerFrame = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(frames)
	r.Loaded = append([]time.Duration(nil), lat...)
	lat = lat[:0]
	run(min(frames, 20000), 1)
	r.Idle = append([]time.Duration(nil), lat...)
	r.LoadedDist = Summarize(r.Loaded)
	r.IdleDist = Summarize(r.Idle)
	return r
}

type pipelineChain struct {
	p      *pipeline.Pipeline
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

var passThrough = pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
})

func newPipelineChain(n, inFlight int, done func(*frame.InputAudio)) chain {
	procs := make([]pipeline.Processor, max(n, 1))
	for i := range procs {
		procs[i] = passThrough
	}
	p := pipeline.New(pipeline.Options{QueueSize: inFlight, Sink: func(f frame.Frame) {
		done(f.(*frame.InputAudio))
	}}, procs...)
	ctx, cancel := context.WithCancel(context.Background())
	c := &pipelineChain{p: p, ctx: ctx, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- p.Run(ctx) }()
	return c
}

func (c *pipelineChain) push(f *frame.InputAudio) {
	if err := c.p.Push(c.ctx, f); err != nil {
		panic("bench: pipeline stopped: " + err.Error())
	}
}

func (c *pipelineChain) close() {
	c.cancel()
	<-c.done
}

type channelChain struct {
	in   chan *frame.InputAudio
	quit chan struct{}
	wait chan struct{}
}

func newChannelChain(n, inFlight int, done func(*frame.InputAudio)) chain {
	c := &channelChain{in: make(chan *frame.InputAudio, inFlight), quit: make(chan struct{}), wait: make(chan struct{})}
	in := c.in
	for range n {
		out := make(chan *frame.InputAudio, inFlight)
		go func(in <-chan *frame.InputAudio, out chan<- *frame.InputAudio) {
			for {
				select {
				case f := <-in:
					select {
					case out <- f:
					case <-c.quit:
						return
					}
				case <-c.quit:
					return
				}
			}
		}(in, out)
		in = out
	}
	go func() {
		defer close(c.wait)
		for {
			select {
			case f := <-in:
				done(f)
			case <-c.quit:
				return
			}
		}
	}()
	return c
}

func (c *channelChain) push(f *frame.InputAudio) { c.in <- f }

func (c *channelChain) close() {
	close(c.quit)
	<-c.wait
}
