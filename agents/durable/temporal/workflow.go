package temporal

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	sdktemporal "go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/voiced-dev/voiced/agents/durable"
)

// noLimit stands for "no timeout" where Temporal needs one (an activity's
// start-to-close timeout).
const noLimit = 10 * 365 * 24 * time.Hour

// runDef is the Temporal workflow of one durable.Workflow. Its run method
// is workflow code: deterministic, with every wait and side effect going
// through the workflow package.
type runDef struct {
	wf        durable.Workflow
	heartbeat time.Duration
}

func (d *runDef) run(ctx workflow.Context, in runInput) (json.RawMessage, error) {
	st := &runState{Updated: workflow.Now(ctx)}
	for _, s := range d.wf.Steps {
		st.Steps = append(st.Steps, stepState{Name: s.Name})
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (runState, error) { return *st, nil }); err != nil {
		return nil, err
	}
	if !slices.Equal(in.Steps, stepNames(d.wf)) {
		st.Error = fmt.Sprintf("%v: started with %q, this worker has %q", durable.ErrDefinitionChange, in.Steps, stepNames(d.wf))
		return nil, sdktemporal.NewNonRetryableApplicationError(st.Error, errPermanent, nil)
	}
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	outputs := map[string]json.RawMessage{}
	var out json.RawMessage
	for i := range d.wf.Steps {
		def, ss := &d.wf.Steps[i], &st.Steps[i]
		st.Current = i
		var err error
		if def.Wait != nil {
			ss.Attempts = 1
			st.Updated = workflow.Now(ctx)
			out, err = waitStep(ctx, def.Wait)
		} else {
			out, err = d.work(ctx, st, i, runID, in.Input, outputs)
		}
		st.Updated = workflow.Now(ctx)
		if ctx.Err() != nil {
			st.Error = durable.ErrCancelled.Error()
			return nil, sdktemporal.NewCanceledError()
		}
		if err != nil {
			st.Error = fmt.Sprintf("step %s: %v", def.Name, err)
			return nil, sdktemporal.NewNonRetryableApplicationError(st.Error, errStepFailed, nil)
		}
		if out == nil {
			out = json.RawMessage("null")
		}
		ss.Done, ss.Output, ss.LastError = true, out, ""
		outputs[def.Name] = out
	}
	st.Current = len(st.Steps)
	return out, nil
}

// work runs step i as activities, one per attempt, retried by the step's
// RetryPolicy with durable timers for the backoff.
func (d *runDef) work(ctx workflow.Context, st *runState, i int, runID string, input json.RawMessage, outputs map[string]json.RawMessage) (json.RawMessage, error) {
	def, ss := &d.wf.Steps[i], &st.Steps[i]
	limit := noLimit
	if def.Timeout > 0 {
		// The step times itself out (durable.RunStep); this is a backstop.
		limit = def.Timeout + d.heartbeat
	}
	ao := workflow.ActivityOptions{
		StartToCloseTimeout: limit,
		HeartbeatTimeout:    d.heartbeat,
		// Only an interrupted attempt (its worker died or stopped) is
		// retried by Temporal; a step's errors are not retryable there.
		RetryPolicy: &sdktemporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	}
	for attempt := 1; ; attempt++ {
		ss.Attempts = attempt
		st.Updated = workflow.Now(ctx)
		var res stepResult
		// The activity ID names the step, so that a replay against a
		// workflow whose steps changed is found nondeterministic.
		ao.ActivityID = fmt.Sprintf("%s/%d", def.Name, attempt)
		actx := workflow.WithActivityOptions(ctx, ao)
		err := workflow.ExecuteActivity(actx, StepActivity, stepArgs{
			Workflow: d.wf.Name, Step: def.Name, RunID: runID, Attempt: attempt,
			Input: input, Outputs: outputs,
		}).Get(ctx, &res)
		if err == nil {
			ss.Resumes += res.Resumes
			return res.Output, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		msg, permanent := err.Error(), false
		var app *sdktemporal.ApplicationError
		if errors.As(err, &app) {
			msg, permanent = app.Message(), app.Type() == errPermanent
		}
		ss.LastError = msg
		if permanent || attempt >= def.Retry.Attempts() {
			return nil, errors.New(msg)
		}
		st.Updated = workflow.Now(ctx)
		if err := workflow.Sleep(ctx, def.Retry.Delay(attempt)); err != nil {
			return nil, err
		}
	}
}

// waitStep sleeps, or waits for a signal, in the workflow.
func waitStep(ctx workflow.Context, w *durable.Wait) (json.RawMessage, error) {
	if w.Sleep > 0 {
		return nil, workflow.Sleep(ctx, w.Sleep)
	}
	var payload json.RawMessage
	got, timedOut := false, false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, w.Signal), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &payload)
		got = true
	})
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	var cancelTimer workflow.CancelFunc
	if w.Timeout > 0 {
		var tctx workflow.Context
		tctx, cancelTimer = workflow.WithCancel(ctx)
		sel.AddFuture(workflow.NewTimer(tctx, w.Timeout), func(workflow.Future) { timedOut = true })
	}
	sel.Select(ctx)
	if cancelTimer != nil {
		cancelTimer()
	}
	switch {
	case got:
		if payload == nil {
			payload = json.RawMessage("null")
		}
		return payload, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case timedOut && w.Default != nil:
		return w.Default, nil
	}
	return nil, fmt.Errorf("%w: %q within %v", durable.ErrNoSignal, w.Signal, w.Timeout)
}
