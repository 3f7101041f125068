package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Backend starts and controls runs of registered workflows. Engine is one;
// agents/durable/temporal runs the same workflows on a Temporal cluster.
// The workflow API, the start tools and the control tools take a Backend,
// so that they work alike on either. The methods behave as Engine's
// methods of the same names document; an implementation returns the same
// errors (ErrNotFound, ErrRunFinished, ErrConflict, ...).
type Backend interface {
	Register(wf Workflow) error
	Workflow(name string) (Workflow, bool)
	Start(ctx context.Context, workflow string, input any) (string, error)
	StartWithID(ctx context.Context, id, workflow string, input any) (created bool, err error)
	Resume(ctx context.Context) (int, error)
	Signal(ctx context.Context, runID, name string, payload any) error
	Cancel(ctx context.Context, runID string) error
	Status(ctx context.Context, runID string) (RunInfo, error)
	Result(ctx context.Context, runID string) (json.RawMessage, error)
	Wait(ctx context.Context, runID string) (json.RawMessage, error)
	Close() error
}

var _ Backend = (*Engine)(nil)

// Encode returns input as a Start would store it: a json.RawMessage as is
// (it must be JSON), anything else encoded as JSON. Errors wrap
// ErrInvalidInput.
func Encode(input any) (json.RawMessage, error) { return encode(input) }

// StepCall is one execution of a step that an engine other than Engine
// runs (agents/durable/temporal runs each one as an activity): what the
// step's RunContext reports.
type StepCall struct {
	RunID    string
	Workflow string
	Step     string
	// Attempt is the step's attempt, from 1, the same for a re-run of an
	// interrupted attempt.
	Attempt int
	Input   json.RawMessage
	// Outputs holds the outputs of the completed earlier steps, by name.
	Outputs map[string]json.RawMessage
	// Notify receives RunContext.Notify messages; nil drops them.
	Notify func(runID, message string)
}

// ErrWaitInStep: a step that RunStep runs called RunContext.Sleep or a
// signal wait, which only Engine offers inside a step; declare such a
// wait as a Wait step instead.
var ErrWaitInStep = errors.New("durable: this engine waits only in Wait steps, not inside a step's Run")

// RunStep runs one execution of def for an engine other than Engine, with
// def's Timeout (the error then wraps ErrStepTimeout) and a panic turned
// into an error. Its RunContext has no durable timers or signals:
// RunContext.Sleep and the signal waits fail with ErrWaitInStep
// (permanent).
func RunStep(ctx context.Context, def Step, call StepCall) (out json.RawMessage, err error) {
	sctx := ctx
	if def.Timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeoutCause(ctx, def.Timeout, ErrStepTimeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, Permanent(fmt.Errorf("durable: step %s panicked: %v", def.Name, p))
		}
	}()
	if def.Run == nil {
		return nil, Permanent(fmt.Errorf("%w: step %s has no Run", ErrInvalidWorkflow, def.Name))
	}
	out, err = def.Run(sctx, &RunContext{ext: &call, attempt: call.Attempt})
	if err == nil && out == nil {
		out = json.RawMessage("null")
	}
	if err == nil && !json.Valid(out) {
		err = Permanent(fmt.Errorf("durable: step %s: output is not JSON", def.Name))
	}
	if ctx.Err() == nil && errors.Is(context.Cause(sctx), ErrStepTimeout) {
		if err == nil {
			return out, nil
		}
		err = fmt.Errorf("step %s: %w: %w", def.Name, ErrStepTimeout, err)
	}
	return out, err
}

// waitInStep is the error of a wait on a RunContext of RunStep.
func waitInStep(what string) error {
	return Permanent(fmt.Errorf("%w (%s)", ErrWaitInStep, what))
}
