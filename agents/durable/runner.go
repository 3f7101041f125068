package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
)

// runner executes one run on its own goroutine. rec is owned by that
// goroutine (steps call RunContext methods on it too).
type runner struct {
	e    *Engine
	wf   *Workflow
	rec  *runRecord
	wake chan struct{} // poked when a signal arrives
	// ctx is the run's: a child of the Engine's, cancelled with
	// ErrCancelled by Cancel.
	ctx    context.Context
	cancel context.CancelCauseFunc
	token  int64 // the lease's fencing token, on a Leaser
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) save() error {
	if r.e.leaser != nil {
		err := r.e.putFenced(r.e.ctx, r.rec, r.token)
		if errors.Is(err, ErrLeaseLost) {
			r.cancel(ErrLeaseLost)
		}
		return err
	}
	return r.e.put(r.e.ctx, r.rec)
}

func (r *runner) run() {
	log := r.e.log.With("run", r.rec.ID, "workflow", r.rec.Workflow)
	ctx := r.ctx
	if !r.rec.Deadline.IsZero() {
		var cancel func()
		ctx, cancel = r.e.withDeadline(ctx, r.rec.Deadline, ErrRunTimeout)
		defer cancel()
	}
	if len(r.rec.Steps) != len(r.wf.Steps) {
		r.finish(log, StatusFailed, nil, ErrDefinitionChange)
		return
	}
	for i := range r.wf.Steps {
		if r.rec.Steps[i].Name != r.wf.Steps[i].Name {
			r.finish(log, StatusFailed, nil, ErrDefinitionChange)
			return
		}
	}
	var out json.RawMessage
	for i := range r.wf.Steps {
		if r.rec.Steps[i].Done {
			out = r.rec.Steps[i].Output
			continue
		}
		var err error
		out, err = r.step(ctx, i)
		switch {
		case err == nil:
		case errors.Is(context.Cause(r.e.ctx), errClosing):
			log.Info("durable: run stopped by close; resumable", "step", r.wf.Steps[i].Name)
			return
		case errors.Is(context.Cause(r.ctx), ErrLeaseLost):
			log.Warn("durable: run stopped: another engine owns it now", "step", r.wf.Steps[i].Name)
			return
		case errors.Is(context.Cause(r.ctx), ErrCancelled):
			r.finish(log, StatusCancelled, nil, ErrCancelled)
			return
		case errors.Is(context.Cause(ctx), ErrRunTimeout):
			r.finish(log, StatusTimedOut, nil, fmt.Errorf("step %s: %w", r.wf.Steps[i].Name, ErrRunTimeout))
			return
		case errors.Is(err, errStore):
			// The store failed: nothing more can be recorded. Leave the run
			// for the next Resume.
			log.Error("durable: store failed; run left for resume", "step", r.wf.Steps[i].Name, "err", err)
			return
		default:
			r.finish(log, StatusFailed, nil, fmt.Errorf("step %s: %w", r.wf.Steps[i].Name, err))
			return
		}
	}
	r.finish(log, StatusCompleted, out, nil)
}

func (r *runner) finish(log *slog.Logger, st Status, out json.RawMessage, err error) {
	r.rec.Status, r.rec.Result = st, out
	for i := range r.rec.Steps {
		r.rec.Steps[i].Running = false
	}
	if err != nil {
		r.rec.Error = err.Error()
	}
	if serr := r.save(); serr != nil {
		log.Error("durable: store failed; run left for resume", "err", serr)
		return
	}
	log.Info("durable: run finished", "status", st, "err", r.rec.Error)
}

var errStore = errors.New("durable: store failed")

// step runs step i until it completes, fails for good, or ctx ends.
func (r *runner) step(ctx context.Context, i int) (json.RawMessage, error) {
	def, sr := &r.wf.Steps[i], &r.rec.Steps[i]
	log := r.e.log.With("run", r.rec.ID, "step", def.Name)
	for {
		if sr.Running {
			sr.Resumes++
			log.Info("durable: re-running interrupted attempt", "attempt", sr.Attempt)
		} else {
			if !sr.RetryAt.IsZero() {
				if err := r.e.sleepUntil(ctx, sr.RetryAt); err != nil {
					return nil, err
				}
			}
			sr.Attempt++
			sr.Running, sr.RetryAt, sr.Timers = true, time.Time{}, nil
		}
		if err := r.save(); err != nil {
			return nil, fmt.Errorf("%w: %w", errStore, err)
		}
		rc := &RunContext{r: r, step: i, attempt: sr.Attempt}
		out, err := r.exec(ctx, def, rc)
		if err == nil {
			if out == nil {
				out = json.RawMessage("null")
			}
			sr.Done, sr.Running, sr.Output, sr.Timers, sr.LastError = true, false, out, nil, ""
			r.rec.Consumed = append(r.rec.Consumed, rc.consumed...)
			if err := r.save(); err != nil {
				return nil, fmt.Errorf("%w: %w", errStore, err)
			}
			log.Debug("durable: step completed", "attempt", sr.Attempt)
			return out, nil
		}
		if ctx.Err() != nil {
			// Closing or run timeout: the attempt stays "running", so a
			// resume re-runs it; the run loop decides.
			return nil, err
		}
		sr.Running, sr.Timers, sr.LastError = false, nil, err.Error()
		if IsPermanent(err) || sr.Attempt >= def.Retry.attempts() {
			if serr := r.save(); serr != nil {
				return nil, fmt.Errorf("%w: %w", errStore, serr)
			}
			return nil, err
		}
		wait := def.Retry.delay(sr.Attempt)
		sr.RetryAt = r.e.clock.Now().Add(wait)
		if serr := r.save(); serr != nil {
			return nil, fmt.Errorf("%w: %w", errStore, serr)
		}
		log.Warn("durable: step failed; retrying", "attempt", sr.Attempt, "in", wait, "err", err)
	}
}

// exec runs one execution of a step under its timeout, turning a panic
// into an error.
func (r *runner) exec(ctx context.Context, def *Step, rc *RunContext) (out json.RawMessage, err error) {
	sctx := ctx
	if def.Timeout > 0 {
		var cancel func()
		sctx, cancel = r.e.withDeadline(ctx, r.e.clock.Now().Add(def.Timeout), ErrStepTimeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("durable: step %s panicked: %v", def.Name, p)
		}
	}()
	out, err = def.Run(sctx, rc)
	if err == nil && !json.Valid(out) && out != nil {
		err = Permanent(fmt.Errorf("durable: step %s: output is not JSON", def.Name))
	}
	if ctx.Err() == nil && errors.Is(context.Cause(sctx), ErrStepTimeout) {
		if err == nil {
			// Completed just as it timed out: keep the result.
			return out, nil
		}
		err = fmt.Errorf("step %s: %w: %w", def.Name, ErrStepTimeout, err)
	}
	return out, err
}

// RunContext is a step's view of its run. It is valid during the step's
// Run call only and is not safe for concurrent use: call its methods from
// the goroutine that runs the step.
type RunContext struct {
	r        *runner
	ext      *StepCall // set instead of r by RunStep
	step     int
	attempt  int
	timers   int   // durable timers set so far in this execution
	consumed []int // signals received in this execution
}

// RunID returns the run's ID.
func (c *RunContext) RunID() string {
	if c.ext != nil {
		return c.ext.RunID
	}
	return c.r.rec.ID
}

// Workflow returns the workflow's name.
func (c *RunContext) Workflow() string {
	if c.ext != nil {
		return c.ext.Workflow
	}
	return c.r.rec.Workflow
}

// Step returns the running step's name.
func (c *RunContext) Step() string {
	if c.ext != nil {
		return c.ext.Step
	}
	return c.r.wf.Steps[c.step].Name
}

// Attempt returns the attempt's number, from 1. A re-run of an interrupted
// attempt after a restart keeps its number.
func (c *RunContext) Attempt() int { return c.attempt }

// IdempotencyKey returns "<run>/<step>/<attempt>": the same for every
// execution of this attempt (including a re-run after a crash), different
// for other steps and attempts. Pass it to external systems that can drop
// duplicate requests. For a key that also stays the same across retries,
// use RunID()+"/"+Step().
func (c *RunContext) IdempotencyKey() string {
	return c.RunID() + "/" + c.Step() + "/" + strconv.Itoa(c.attempt)
}

// Input returns the run's input. The caller must not modify it.
func (c *RunContext) Input() json.RawMessage {
	if c.ext != nil {
		return c.ext.Input
	}
	return c.r.rec.Input
}

// DecodeInput decodes the run's input into v, rejecting unknown fields.
func (c *RunContext) DecodeInput(v any) error { return decodeStrict(c.Input(), v) }

// Output returns the output of an earlier, completed step. The caller must
// not modify it.
func (c *RunContext) Output(step string) (json.RawMessage, bool) {
	if c.ext != nil {
		out, ok := c.ext.Outputs[step]
		return out, ok
	}
	for _, s := range c.r.rec.Steps {
		if s.Name == step && s.Done {
			return s.Output, true
		}
	}
	return nil, false
}

// DecodeOutput decodes a completed step's output into v.
func (c *RunContext) DecodeOutput(step string, v any) error {
	out, ok := c.Output(step)
	if !ok {
		return fmt.Errorf("durable: step %q has no output", step)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("durable: decode output of %q: %w", step, err)
	}
	return nil
}

// Notify passes message to the Engine's Notify hook (for example, to be
// spoken to the session that started the run). Like every side effect in a
// step, it happens again if the step is re-run.
func (c *RunContext) Notify(message string) {
	if c.ext != nil {
		if c.ext.Notify != nil {
			c.ext.Notify(c.RunID(), message)
		}
		return
	}
	if c.r.e.notify != nil {
		c.r.e.notify(c.RunID(), message)
	}
}

// Sleep waits for d, durably: the wake-up time is stored first, and a
// re-run of this attempt after a restart waits only for what is left. It
// returns ctx's cause if ctx ends first.
func (c *RunContext) Sleep(ctx context.Context, d time.Duration) error {
	if c.ext != nil {
		return waitInStep("Sleep")
	}
	at, err := c.timer(d)
	if err != nil {
		return err
	}
	return c.r.e.sleepUntil(ctx, at)
}

// WaitSignal blocks until the run receives a signal called name that no
// completed step has consumed (and that this execution has not received
// already), and returns its payload. Signals sent earlier, even while no
// process ran the workflow, count. It returns ctx's cause if ctx ends
// first.
func (c *RunContext) WaitSignal(ctx context.Context, name string) (json.RawMessage, error) {
	p, _, err := c.waitSignal(ctx, name, time.Time{})
	return p, err
}

// WaitSignalFor is WaitSignal bounded by a durable timer of d: ok is false
// if d passed (counted across restarts, like Sleep) before a signal came.
func (c *RunContext) WaitSignalFor(ctx context.Context, name string, d time.Duration) (payload json.RawMessage, ok bool, err error) {
	if c.ext != nil {
		return nil, false, waitInStep("signal " + name)
	}
	at, err := c.timer(d)
	if err != nil {
		return nil, false, err
	}
	return c.waitSignal(ctx, name, at)
}

// timer returns the wake-up time of this execution's next durable timer:
// the stored one if an earlier execution of the attempt set it, else now+d,
// stored before returning.
func (c *RunContext) timer(d time.Duration) (time.Time, error) {
	sr := &c.r.rec.Steps[c.step]
	n := c.timers
	c.timers++
	if n < len(sr.Timers) {
		return sr.Timers[n], nil
	}
	at := c.r.e.clock.Now().Add(d)
	sr.Timers = append(sr.Timers, at)
	if err := c.r.save(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", errStore, err)
	}
	return at, nil
}

func (c *RunContext) waitSignal(ctx context.Context, name string, until time.Time) (json.RawMessage, bool, error) {
	if c.ext != nil {
		return nil, false, waitInStep("signal " + name)
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := until.Sub(c.r.e.clock.Now())
		if d <= 0 {
			d = 0
		}
		tm := c.r.e.clock.NewTimer(d)
		defer tm.Stop()
		deadline = tm.C()
	}
	for {
		sigs, err := c.r.e.store.Signals(ctx, c.RunID())
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, context.Cause(ctx)
			}
			return nil, false, fmt.Errorf("%w: %w", errStore, err)
		}
		for idx, b := range sigs {
			if slices.Contains(c.r.rec.Consumed, idx) || slices.Contains(c.consumed, idx) || isCancelRecord(b) {
				continue
			}
			var s signalRecord
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, false, fmt.Errorf("durable: decode signal %d: %w", idx, err)
			}
			if s.Name == name {
				c.consumed = append(c.consumed, idx)
				return s.Payload, true, nil
			}
		}
		select {
		case <-c.r.wake:
		case <-deadline:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, context.Cause(ctx)
		}
	}
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrInvalidInput)
	}
	return nil
}
