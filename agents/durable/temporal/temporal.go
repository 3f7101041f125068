// Package temporal runs durable workflows (durable.Workflow, as declared in
// [[workflows]]) on a Temporal cluster instead of durable.Engine's store:
// each workflow is a Temporal workflow of the same name, and each step that
// does work (a tool, an HTTP call, an agent run, a say) is a Temporal
// activity run by the worker inside voiced. Steps that only wait
// (durable.Step.Wait: sleep and signal steps) are Temporal timers and
// signal channels in the workflow itself.
//
// The workflow code is deterministic: the step sequence, the retries of a
// failed step (the step's RetryPolicy, with workflow timers for the
// backoff) and the waits. A step's attempt runs as one activity; the
// activity heartbeats, so that when the worker running it dies, Temporal
// runs the same attempt again on another worker after HeartbeatTimeout, with
// the same idempotency key (run/step/attempt), as durable.Engine re-runs an
// interrupted attempt after a restart. A step's error never makes Temporal
// retry the activity by itself: the workflow decides, by the step's
// RetryPolicy, and durable.Permanent errors fail the run at once.
//
// The run's state (steps, attempts, outputs, errors) is the workflow query
// "voiced.state"; the run's input is kept in the workflow's memo. Run IDs
// are workflow IDs; a finished run's ID is never reused.
package temporal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	sdktemporal "go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/voiced-dev/voiced/agents/durable"
)

// Defaults of Options.
const (
	DefaultAddress          = "127.0.0.1:7233"
	DefaultNamespace        = "default"
	DefaultTaskQueue        = "voiced"
	DefaultHeartbeatTimeout = 10 * time.Second
)

// Names in Temporal.
const (
	// StateQuery is the query that returns a run's state.
	StateQuery = "voiced.state"
	// StepActivity is the activity type that runs one attempt of a step.
	StepActivity = "voiced.step"

	memoInput     = "voiced_input"
	errPermanent  = "voiced.permanent"
	errStepFailed = "voiced.step"
)

// Options configure an Engine.
type Options struct {
	Address   string // host:port of the Temporal frontend; default DefaultAddress
	Namespace string // default DefaultNamespace
	TaskQueue string // the workflows' and activities' queue; default DefaultTaskQueue
	// Logger receives the engine's and the Temporal SDK's logs. Nil:
	// discard.
	Logger *slog.Logger
	// Notify receives RunContext.Notify messages (say steps), as in
	// durable.Options, on the worker that runs the step.
	Notify func(runID, message string)
	// HeartbeatTimeout is how long Temporal waits for a running step's
	// heartbeat before it runs the attempt on another worker: a dead
	// worker's step resumes elsewhere about this long after it died.
	// Default DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// StickyTimeout is how long a workflow task waits for the worker that
	// ran the workflow last before any worker may take it (Temporal's
	// sticky schedule-to-start timeout). Default: Temporal's (5s).
	StickyTimeout time.Duration
}

// Engine is a durable.Backend on Temporal. Register the workflows, then
// call Resume, which starts the worker.
type Engine struct {
	c      client.Client
	opts   Options
	log    *slog.Logger
	notify func(runID, message string)

	mu        sync.Mutex
	workflows map[string]durable.Workflow
	w         worker.Worker // started by Resume
	closed    bool
}

var _ durable.Backend = (*Engine)(nil)

// Dial connects to the Temporal frontend at opts.Address (bounded by ctx)
// and returns an Engine that runs nothing until Resume.
func Dial(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.TaskQueue == "" {
		opts.TaskQueue = DefaultTaskQueue
	}
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  opts.Address,
		Namespace: opts.Namespace,
		Logger:    sdklog.NewStructuredLogger(log),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal: dial %s: %w", opts.Address, err)
	}
	return &Engine{c: c, opts: opts, log: log, notify: opts.Notify, workflows: map[string]durable.Workflow{}}, nil
}

// Register adds a workflow (checked as durable.Engine.Register checks
// it). Register every workflow before Resume.
func (e *Engine) Register(wf durable.Workflow) error {
	wf, err := durable.CheckWorkflow(wf)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w != nil {
		return fmt.Errorf("temporal: register %q: the worker runs already (register before Resume)", wf.Name)
	}
	if _, ok := e.workflows[wf.Name]; ok {
		return fmt.Errorf("%w: %q", durable.ErrDuplicate, wf.Name)
	}
	e.workflows[wf.Name] = wf
	return nil
}

// Workflow returns the registered workflow of that name.
func (e *Engine) Workflow(name string) (durable.Workflow, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wf, ok := e.workflows[name]
	return wf, ok
}

// Resume starts the worker, which runs the registered workflows' runs and
// steps from the task queue: the new ones and those another worker left
// unfinished. Temporal tells no count: it returns 0. Later calls do
// nothing.
func (e *Engine) Resume(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, durable.ErrClosed
	}
	if e.w != nil {
		return 0, nil
	}
	w := worker.New(e.c, e.opts.TaskQueue, worker.Options{
		StickyScheduleToStartTimeout: e.opts.StickyTimeout,
		// A history that no longer matches the workflow (its steps
		// changed while the run was in flight) fails the run, as on
		// durable.Engine, rather than stalling it.
		WorkflowPanicPolicy: worker.FailWorkflow,
	})
	for name, wf := range e.workflows {
		w.RegisterWorkflowWithOptions((&runDef{wf: wf, heartbeat: e.opts.HeartbeatTimeout}).run, workflow.RegisterOptions{Name: name})
	}
	w.RegisterActivityWithOptions(e.runStep, activity.RegisterOptions{Name: StepActivity})
	if err := w.Start(); err != nil {
		return 0, fmt.Errorf("temporal: start worker on %s: %w", e.opts.TaskQueue, err)
	}
	e.w = w
	e.log.Info("temporal: worker started", "task_queue", e.opts.TaskQueue, "workflows", len(e.workflows))
	return 0, nil
}

// Start begins a run with a new ID.
func (e *Engine) Start(ctx context.Context, workflow string, input any) (string, error) {
	id := durable.NewRunID()
	if _, err := e.start(ctx, id, workflow, input); err != nil {
		return "", err
	}
	return id, nil
}

// StartWithID begins run id, idempotently: as durable.Engine.StartWithID.
func (e *Engine) StartWithID(ctx context.Context, id, workflow string, input any) (bool, error) {
	if !durable.ValidRunID(id) {
		return false, fmt.Errorf("%w: %q", durable.ErrInvalidID, id)
	}
	return e.start(ctx, id, workflow, input)
}

func (e *Engine) start(ctx context.Context, id, name string, input any) (bool, error) {
	in, err := durable.Encode(input)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	wf, ok := e.workflows[name]
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return false, durable.ErrClosed
	}
	if !ok {
		return false, fmt.Errorf("%w: %q", durable.ErrUnknownWorkflow, name)
	}
	if wf.CheckInput != nil {
		if err := wf.CheckInput(in); err != nil {
			return false, fmt.Errorf("%w: %w", durable.ErrInvalidInput, err)
		}
	}
	_, err = e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                e.opts.TaskQueue,
		WorkflowExecutionTimeout:                 wf.Timeout,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{memoInput: in},
	}, name, runInput{Input: in, Steps: stepNames(wf)})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		d, derr := e.describe(ctx, id)
		if derr != nil {
			return false, derr
		}
		if d.workflow != name || !durable.SameJSON(d.input, in) {
			return false, fmt.Errorf("%w: %s is a run of %s", durable.ErrConflict, id, d.workflow)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("temporal: start %s: %w", id, err)
	}
	e.log.Info("durable: run started", "run", id, "workflow", name, "engine", "temporal")
	return true, nil
}

// Signal sends a named signal to the run; the run's signal step of that
// name receives it (signals sent before the step is reached wait for it).
func (e *Engine) Signal(ctx context.Context, runID, name string, payload any) error {
	p, err := durable.Encode(payload)
	if err != nil {
		return err
	}
	if err := e.running(ctx, runID); err != nil {
		return err
	}
	if err := e.c.SignalWorkflow(ctx, runID, "", name, p); err != nil {
		return e.controlError(runID, "signal", err)
	}
	return nil
}

// Cancel cancels the run and waits, within ctx, until it has stopped.
func (e *Engine) Cancel(ctx context.Context, runID string) error {
	if err := e.running(ctx, runID); err != nil {
		return err
	}
	if err := e.c.CancelWorkflow(ctx, runID, ""); err != nil {
		return e.controlError(runID, "cancel", err)
	}
	err := e.c.GetWorkflow(ctx, runID, "").Get(ctx, nil)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("temporal: cancel %s: %w", runID, context.Cause(ctx))
	}
	e.log.Info("durable: run cancelled", "run", runID, "engine", "temporal")
	return nil
}

// running fails with ErrNotFound or ErrRunFinished unless run id runs.
func (e *Engine) running(ctx context.Context, id string) error {
	d, err := e.describe(ctx, id)
	if err != nil {
		return err
	}
	if d.status.Finished() {
		return fmt.Errorf("%w: %s", durable.ErrRunFinished, id)
	}
	return nil
}

func (e *Engine) controlError(id, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// It existed a moment ago: it finished meanwhile.
		return fmt.Errorf("%w: %s", durable.ErrRunFinished, id)
	}
	return fmt.Errorf("temporal: %s %s: %w", what, id, err)
}

// Status describes the run: its state from the workflow query while it
// runs (and after, while a worker can answer), else from Temporal's record.
func (e *Engine) Status(ctx context.Context, runID string) (durable.RunInfo, error) {
	d, err := e.describe(ctx, runID)
	if err != nil {
		return durable.RunInfo{}, err
	}
	info := durable.RunInfo{
		ID: runID, Workflow: d.workflow, Status: d.status, Created: d.started,
		Updated: d.started, Input: d.input,
	}
	if !d.closed.IsZero() {
		info.Updated = d.closed
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, qerr := e.query(qctx, runID)
	if qerr == nil {
		for i, s := range st.Steps {
			info.Steps = append(info.Steps, durable.StepInfo{
				Name: s.Name, Completed: s.Done, Attempts: s.Attempts, Resumes: s.Resumes,
				LastError: s.LastError, Output: s.Output,
			})
			if !s.Done && info.Step == "" && !d.status.Finished() && i == st.Current {
				info.Step = s.Name
			}
		}
		if !st.Updated.IsZero() && d.closed.IsZero() {
			info.Updated = st.Updated
		}
		info.Error = st.Error
	} else {
		e.log.Debug("temporal: state query failed", "run", runID, "err", qerr)
		if wf, ok := e.Workflow(d.workflow); ok {
			for _, s := range wf.Steps {
				info.Steps = append(info.Steps, durable.StepInfo{Name: s.Name})
			}
		}
	}
	if d.status.Finished() {
		out, rerr := e.result(ctx, runID, d.status)
		if d.status == durable.StatusCompleted && rerr == nil {
			info.Result = out
		}
		if info.Error == "" && rerr != nil && d.status != durable.StatusCompleted {
			info.Error = rerr.Error()
		}
	}
	return info, nil
}

func (e *Engine) query(ctx context.Context, id string) (runState, error) {
	var st runState
	v, err := e.c.QueryWorkflow(ctx, id, "", StateQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// Result returns a finished run's result, as durable.Engine.Result.
func (e *Engine) Result(ctx context.Context, runID string) (json.RawMessage, error) {
	d, err := e.describe(ctx, runID)
	if err != nil {
		return nil, err
	}
	if !d.status.Finished() {
		return nil, fmt.Errorf("%w: %s", durable.ErrNotFinished, runID)
	}
	return e.result(ctx, runID, d.status)
}

// Wait blocks until the run finishes, or ctx ends, and returns what
// Result returns.
func (e *Engine) Wait(ctx context.Context, runID string) (json.RawMessage, error) {
	if _, err := e.describe(ctx, runID); err != nil {
		return nil, err
	}
	var out json.RawMessage
	err := e.c.GetWorkflow(ctx, runID, "").Get(ctx, &out)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	d, derr := e.describe(ctx, runID)
	if derr != nil {
		return nil, derr
	}
	return nil, finishError(runID, d.status, err)
}

func (e *Engine) result(ctx context.Context, id string, st durable.Status) (json.RawMessage, error) {
	var out json.RawMessage
	err := e.c.GetWorkflow(ctx, id, "").Get(ctx, &out)
	if err == nil {
		return out, nil
	}
	return nil, finishError(id, st, err)
}

// finishError is the durable error of a run that ended with st, whose
// Temporal result was err.
func finishError(id string, st durable.Status, err error) error {
	msg := err.Error()
	var app *sdktemporal.ApplicationError
	if errors.As(err, &app) {
		msg = app.Message()
	}
	switch st {
	case durable.StatusTimedOut:
		return fmt.Errorf("%w: %s", durable.ErrRunTimeout, msg)
	case durable.StatusCancelled:
		return fmt.Errorf("%w: %s", durable.ErrCancelled, id)
	}
	return fmt.Errorf("%w: %s", durable.ErrRunFailed, msg)
}

// Close stops the worker (a step it runs is run again by another worker,
// or by this program's next start) and closes the connection. Runs go on
// in Temporal.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	w := e.w
	e.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	e.c.Close()
	return nil
}

type description struct {
	workflow string
	status   durable.Status
	started  time.Time
	closed   time.Time
	input    json.RawMessage
}

func (e *Engine) describe(ctx context.Context, id string) (description, error) {
	var d description
	desc, err := e.c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return d, fmt.Errorf("%w: %s", durable.ErrNotFound, id)
		}
		return d, fmt.Errorf("temporal: describe %s: %w", id, err)
	}
	x := desc.RawResponse.GetWorkflowExecutionInfo()
	d.workflow = x.GetType().GetName()
	d.started = x.GetStartTime().AsTime()
	if x.GetCloseTime() != nil {
		d.closed = x.GetCloseTime().AsTime()
	}
	switch x.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		d.status = durable.StatusRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		d.status = durable.StatusCompleted
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		d.status = durable.StatusCancelled
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		d.status = durable.StatusTimedOut
	default: // failed, terminated, continued as new
		d.status = durable.StatusFailed
	}
	if p, ok := x.GetMemo().GetFields()[memoInput]; ok {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &d.input); err != nil {
			return d, fmt.Errorf("temporal: decode input of %s: %w", id, err)
		}
	}
	return d, nil
}

// runStep is the step activity: one attempt of one step, heartbeating
// while it works.
func (e *Engine) runStep(ctx context.Context, a stepArgs) (stepResult, error) {
	info := activity.GetInfo(ctx)
	wf, ok := e.Workflow(a.Workflow)
	var def *durable.Step
	for i := range wf.Steps {
		if ok && wf.Steps[i].Name == a.Step {
			def = &wf.Steps[i]
		}
	}
	if def == nil {
		return stepResult{}, sdktemporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%v: %s has no step %q here", durable.ErrDefinitionChange, a.Workflow, a.Step), errPermanent, nil)
	}
	resumes := int(info.Attempt) - 1
	if resumes > 0 {
		e.log.Info("durable: re-running interrupted attempt", "run", a.RunID, "step", a.Step, "attempt", a.Attempt, "engine", "temporal")
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(max(e.opts.HeartbeatTimeout/4, 50*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	out, err := durable.RunStep(ctx, *def, durable.StepCall{
		RunID: a.RunID, Workflow: a.Workflow, Step: a.Step, Attempt: a.Attempt,
		Input: a.Input, Outputs: a.Outputs, Notify: e.notify,
	})
	if err == nil {
		return stepResult{Output: out, Resumes: resumes}, nil
	}
	select {
	case <-activity.GetWorkerStopChannel(ctx):
		// This worker stops: the attempt was interrupted, not failed.
		// Temporal runs it again (on another worker).
		return stepResult{}, fmt.Errorf("temporal: worker stopping: %w", err)
	default:
	}
	if ctx.Err() != nil {
		// Cancelled (the run was), or timed out in Temporal's eyes.
		return stepResult{}, err
	}
	kind := errStepFailed
	if durable.IsPermanent(err) {
		kind = errPermanent
	}
	return stepResult{}, sdktemporal.NewNonRetryableApplicationError(err.Error(), kind, nil)
}

type runInput struct {
	Input json.RawMessage `json:"input"`
	// Steps are the step names of the workflow that started the run: a
	// worker whose workflow has others fails the run.
	Steps []string `json:"steps"`
}

func stepNames(wf durable.Workflow) []string {
	var names []string
	for _, s := range wf.Steps {
		names = append(names, s.Name)
	}
	return names
}

type stepArgs struct {
	Workflow string                     `json:"workflow"`
	Step     string                     `json:"step"`
	RunID    string                     `json:"run_id"`
	Attempt  int                        `json:"attempt"`
	Input    json.RawMessage            `json:"input"`
	Outputs  map[string]json.RawMessage `json:"outputs,omitempty"`
}

type stepResult struct {
	Output  json.RawMessage `json:"output"`
	Resumes int             `json:"resumes,omitempty"`
}

// runState is the answer to StateQuery.
type runState struct {
	Current int         `json:"current"` // the index of the step running or next
	Steps   []stepState `json:"steps"`
	Error   string      `json:"error,omitempty"`
	Updated time.Time   `json:"updated"`
}

type stepState struct {
	Name      string          `json:"name"`
	Done      bool            `json:"done,omitempty"`
	Attempts  int             `json:"attempts,omitempty"`
	Resumes   int             `json:"resumes,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
}
