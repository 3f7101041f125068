// Package pipeline runs a conversation as a chain of processor stages, one
// goroutine per stage, connected by bounded channels.
//
// Each stage has three inbound lanes: system frames travelling downstream,
// frames travelling upstream (sent by the next stage), and data/control frames
// travelling downstream. A stage always takes a waiting system frame before
// anything else, so input audio, VAD events and interruptions overtake queued
// output.
//
// Two contexts govern a run. The session context (Run's argument) ends the
// whole pipeline now. The turn context, derived from it, is what processors
// receive in Process: Interrupt cancels it with cause ErrInterrupted and
// starts a new turn, so a stage blocked inside a model stream or a synthesis
// call stops at once. Data and control frames stamped with an older turn are
// dropped when dequeued (unless frame.Survives says otherwise), which flushes
// every stage's queue of the interrupted answer.
//
// State that several stages need (is the user speaking, is the bot
// speaking) is published by the runtime as the events that change it are
// created, and read through Runtime.State from any goroutine, instead of
// each stage tracking relayed frames (see State).
//
// Pushing a frame.End drains gracefully: each stage's Drainer runs (the output
// stage plays out its queue) before End moves on, and Run returns nil once End
// has left the last stage. A stage may also emit End itself (ending the
// session from inside, say after an idle timeout): the stages after it drain,
// the ones before it are stopped. Cancelling the session context stops at once. No
// goroutine started by the pipeline (or through Runtime.Go) outlives Run.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

var (
	// ErrInterrupted is the cause of a turn context cancelled by barge-in.
	ErrInterrupted = errors.New("pipeline: interrupted")
	// ErrStopped is returned by Push once the pipeline has stopped.
	ErrStopped = errors.New("pipeline: stopped")
	// ErrRunning is returned by Run on a pipeline that was already run.
	ErrRunning = errors.New("pipeline: already run")

	errEnded = errors.New("pipeline: ended")
)

// Processor handles the frames of one stage, one at a time, on the stage's
// goroutine. ctx is the turn context: it is cancelled with cause
// ErrInterrupted on barge-in. Frames a processor does not consume must be
// passed on with out.Pass. A non-nil error (other than the turn's own
// cancellation) fails the whole pipeline; recoverable problems should be
// emitted as *frame.Error instead.
type Processor interface {
	Process(ctx context.Context, f frame.Frame, out Emitter) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, f frame.Frame, out Emitter) error

// Process calls fn.
func (fn ProcessorFunc) Process(ctx context.Context, f frame.Frame, out Emitter) error {
	return fn(ctx, f, out)
}

// Emitter sends frames out of a stage. Emit and EmitUp are safe to call from
// any goroutine; Pass is for the stage goroutine only (inside Process or
// Drain), since the direction it follows is that of the frame the stage is
// processing. All block while the receiving lane is full (back-pressure) and
// drop the frame once the pipeline is stopping. Frames without an ID are
// stamped with one, and with a turn: the turn of the frame being processed
// when called from Process, otherwise the current turn. A processor doing
// work for a turn on its own goroutine sets Header().Turn itself.
type Emitter interface {
	Emit(f frame.Frame)   // downstream
	EmitUp(f frame.Frame) // upstream
	Pass(f frame.Frame)   // onward, in the direction the processed frame travels (stage goroutine only)
}

// Runtime is the pipeline as seen by its processors.
type Runtime interface {
	// Interrupt starts a new turn: it cancels the current turn context with
	// cause ErrInterrupted and returns the new turn number. The caller then
	// emits a *frame.Interruption so every stage clears its buffers.
	Interrupt(reason string) uint32
	// Turn returns the current turn number (starting at 1).
	Turn() uint32
	// State is the conversation's shared state (user and bot speaking),
	// published by the runtime as the events that change it are created.
	State() *State
	// Go runs fn on a goroutine that Run waits for. ctx is the session
	// context.
	Go(fn func(ctx context.Context))
	// Logger is the pipeline's logger.
	Logger() *slog.Logger
}

// Starter is implemented by processors that need setup before frames flow.
// ctx is the session context; out is the stage's Emitter, which the
// processor may keep to emit from its own goroutines.
type Starter interface {
	Start(ctx context.Context, rt Runtime, out Emitter) error
}

// Drainer is implemented by processors that hold frames of their own (text
// aggregators, playout buffers). Drain is called when End reaches the stage,
// with the session context, before End moves on; it emits what is held and
// returns when that is done.
type Drainer interface {
	Drain(ctx context.Context, out Emitter) error
}

// Direction is the way a frame travels.
type Direction uint8

const (
	Downstream Direction = iota
	Upstream
)

// Hop is one movement of a frame, as seen by observers. From and To are stage
// indexes; -1 is outside the pipeline (Push, or upstream past the first
// stage) and Len() is past the last stage.
type Hop struct {
	Frame frame.Frame
	From  int
	To    int
	Dir   Direction
	At    time.Time
	First bool // the frame was just created (stamped by this hop)
}

// Observer sees every hop of every frame. OnHop is called synchronously on
// the sending goroutine, possibly from several goroutines at once: it must be
// fast, must not block, and must not modify the frame.
type Observer interface {
	OnHop(h Hop)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(h Hop)

// OnHop calls fn.
func (fn ObserverFunc) OnHop(h Hop) { fn(h) }

// Options configures a Pipeline. The zero value works.
type Options struct {
	Observers []Observer
	Logger    *slog.Logger
	// QueueSize is the capacity of each lane (default 64).
	QueueSize int
	// Sink, if set, receives every frame leaving the last stage downstream,
	// on that stage's goroutine. It must not block.
	Sink func(frame.Frame)
}

// Pipeline is one conversation's chain of stages.
type Pipeline struct {
	stages []*stage
	obs    []Observer
	log    *slog.Logger
	sink   func(frame.Frame)

	ids   atomic.Uint64
	state State
	mu    sync.Mutex // serializes Interrupt
	cur   atomic.Pointer[turn]
	ran   atomic.Bool
	sess  context.Context
	fail  context.CancelCauseFunc
	quit  chan struct{} // closed when Run returns
	wg    sync.WaitGroup
}

type turn struct {
	n      uint32
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// New builds a pipeline of the given processors, in order.
func New(opts Options, procs ...Processor) *Pipeline {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{
		obs:  opts.Observers,
		log:  opts.Logger,
		sink: opts.Sink,
		quit: make(chan struct{}),
	}
	for i, proc := range procs {
		p.stages = append(p.stages, &stage{
			p:    p,
			idx:  i,
			name: nameOf(proc),
			proc: proc,
			sys:  make(chan frame.Frame, opts.QueueSize),
			up:   make(chan frame.Frame, opts.QueueSize),
			data: make(chan frame.Frame, opts.QueueSize),
			done: make(chan struct{}),
		})
	}
	return p
}

// Namer is implemented by processors that name their stage for logs and
// observers; otherwise the type name is used.
type Namer interface{ Name() string }

func nameOf(p Processor) string {
	if n, ok := p.(Namer); ok {
		return n.Name()
	}
	t := reflect.TypeOf(p)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

// Len is the number of stages.
func (p *Pipeline) Len() int { return len(p.stages) }

// StageName returns the name of stage i.
func (p *Pipeline) StageName(i int) string {
	if i < 0 || i >= len(p.stages) {
		return ""
	}
	return p.stages[i].name
}

// Turn returns the current turn number.
func (p *Pipeline) Turn() uint32 {
	if t := p.cur.Load(); t != nil {
		return t.n
	}
	return 1
}

// Logger returns the pipeline's logger.
func (p *Pipeline) Logger() *slog.Logger { return p.log }

// State implements Runtime. It may be read before, during and after Run.
func (p *Pipeline) State() *State { return &p.state }

// Interrupt implements Runtime. It is safe to call from any goroutine while
// Run is running, and does nothing before or after.
func (p *Pipeline) Interrupt(reason string) uint32 {
	p.mu.Lock()
	old := p.cur.Load()
	if old == nil || p.sess.Err() != nil {
		p.mu.Unlock()
		return p.Turn()
	}
	p.cur.Store(p.newTurn(old.n + 1))
	p.mu.Unlock()
	old.cancel(ErrInterrupted)
	p.log.Debug("turn interrupted", "turn", old.n, "reason", reason)
	return old.n + 1
}

func (p *Pipeline) newTurn(n uint32) *turn {
	ctx, cancel := context.WithCancelCause(p.sess)
	return &turn{n: n, ctx: ctx, cancel: cancel}
}

// Go implements Runtime.
func (p *Pipeline) Go(fn func(ctx context.Context)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn(p.sess)
	}()
}

// Push sends f into the first stage, as if from an upstream source. It
// blocks while the lane is full, and returns ErrStopped once the pipeline has
// stopped, or ctx's error. Push may be called before Run and from several
// goroutines.
func (p *Pipeline) Push(ctx context.Context, f frame.Frame) error {
	if len(p.stages) == 0 {
		return ErrStopped
	}
	select {
	case <-p.quit:
		return ErrStopped
	default:
	}
	h := f.Header()
	first := h.ID == 0
	if first {
		h.ID = p.ids.Add(1)
		if h.Turn == 0 {
			h.Turn = p.Turn()
		}
		p.state.publish(f)
	}
	s := p.stages[0]
	ch := s.data
	if f.Class() == frame.System {
		ch = s.sys
	}
	p.observe(f, -1, 0, Downstream, first)
	select {
	case ch <- f:
		return nil
	case <-s.done:
		return ErrStopped
	case <-p.quit:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the pipeline until End has passed the last stage (it returns nil),
// ctx is cancelled (it returns ctx's cause), or a stage fails (it returns that
// error). Processors implementing io.Closer are closed before Run returns.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(p.quit)
	sess, fail := context.WithCancelCause(ctx)
	p.sess, p.fail = sess, fail
	p.cur.Store(p.newTurn(1))

	var err error
	for _, s := range p.stages {
		if st, ok := s.proc.(Starter); ok {
			if err = st.Start(sess, p, s); err != nil {
				err = fmt.Errorf("pipeline: start %s: %w", s.name, err)
				fail(err)
				break
			}
		}
	}
	if err == nil {
		var g sync.WaitGroup
		for _, s := range p.stages {
			g.Add(1)
			go func() {
				defer g.Done()
				defer close(s.done)
				if serr := s.run(sess); serr != nil {
					fail(serr)
				} else if s.ended && s.idx == len(p.stages)-1 {
					// End has left the pipeline: stages before the one
					// that emitted it (if it did not come from Push) stop.
					fail(errEnded)
				}
			}()
		}
		g.Wait()
		if sess.Err() != nil {
			if err = context.Cause(sess); errors.Is(err, errEnded) {
				err = nil
			}
		}
	}
	fail(ErrStopped)
	p.cur.Load().cancel(ErrStopped)
	p.wg.Wait()
	var cerr error
	for _, s := range p.stages {
		if c, ok := s.proc.(io.Closer); ok {
			if e := c.Close(); e != nil && cerr == nil {
				cerr = fmt.Errorf("pipeline: close %s: %w", s.name, e)
			}
		}
	}
	if err == nil {
		err = cerr
	}
	return err
}

func (p *Pipeline) observe(f frame.Frame, from, to int, d Direction, first bool) {
	if len(p.obs) == 0 {
		return
	}
	h := Hop{Frame: f, From: from, To: to, Dir: d, At: time.Now(), First: first}
	for _, o := range p.obs {
		o.OnHop(h)
	}
}

type stage struct {
	p    *Pipeline
	idx  int
	name string
	proc Processor

	sys, up, data chan frame.Frame
	done          chan struct{}

	ended    bool          // End passed this stage (set before run returns)
	procTurn atomic.Uint32 // turn of the frame being processed
	dir      Direction     // direction of the frame being processed (stage goroutine only)
}

func (s *stage) run(ctx context.Context) error {
	p := s.p
	for {
		var f frame.Frame
		dir := Downstream
		select {
		case f = <-s.sys:
		default:
			select {
			case f = <-s.sys:
			case f = <-s.up:
				dir = Upstream
			case f = <-s.data:
			case <-ctx.Done():
				return nil
			}
		}
		t := p.cur.Load()
		if f.Header().Turn < t.n && !frame.Survives(f) {
			continue // stale: the turn that made it was interrupted
		}
		if e, ok := f.(*frame.End); ok && dir == Downstream {
			if d, ok := s.proc.(Drainer); ok {
				s.procTurn.Store(p.Turn())
				s.dir = Downstream
				if err := d.Drain(ctx, s); err != nil && ctx.Err() == nil {
					return fmt.Errorf("pipeline: drain %s: %w", s.name, err)
				}
			}
			s.Emit(e)
			s.ended = true
			return nil
		}
		s.procTurn.Store(t.n)
		s.dir = dir
		if err := s.proc.Process(t.ctx, f, s); err != nil {
			if (t.ctx.Err() != nil && errors.Is(err, context.Canceled)) || errors.Is(err, ErrInterrupted) {
				continue // the turn was cut off under it
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pipeline: %s: %w", s.name, err)
		}
	}
}

// Emit implements Emitter.
func (s *stage) Emit(f frame.Frame) { s.send(f, Downstream) }

// EmitUp implements Emitter.
func (s *stage) EmitUp(f frame.Frame) { s.send(f, Upstream) }

// Pass implements Emitter.
func (s *stage) Pass(f frame.Frame) { s.send(f, s.dir) }

func (s *stage) send(f frame.Frame, d Direction) {
	p := s.p
	h := f.Header()
	first := h.ID == 0
	if first {
		h.ID = p.ids.Add(1)
		if h.Turn == 0 {
			h.Turn = s.procTurn.Load()
			if h.Turn == 0 {
				h.Turn = p.Turn()
			}
		}
		p.state.publish(f)
	}
	var next *stage
	to := s.idx + 1
	if d == Upstream {
		to = s.idx - 1
	}
	if to >= 0 && to < len(p.stages) {
		next = p.stages[to]
	}
	p.observe(f, s.idx, to, d, first)
	if next == nil {
		if d == Downstream && p.sink != nil {
			p.sink(f)
		}
		return
	}
	var ch chan frame.Frame
	switch {
	case d == Upstream:
		ch = next.up
	case f.Class() == frame.System:
		ch = next.sys
	default:
		ch = next.data
	}
	select {
	case ch <- f:
	case <-next.done:
	case <-p.sess.Done():
	}
}
