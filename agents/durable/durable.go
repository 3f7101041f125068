// Package durable runs workflows whose progress survives crashes and
// restarts: a workflow is a named list of steps, and the engine checkpoints
// each step's output to a Store as soon as the step completes.
//
// # Exactly-once contract
//
// A step that completed and was checkpointed never runs again for that run:
// after a restart, Resume continues with the first step that has no
// checkpoint, and later steps read earlier outputs from the checkpoint
// (RunContext.Output), so an expensive model call or a side-effecting tool
// in a completed step runs once.
//
// A step interrupted mid-way (the process crashed or was killed, or the
// Engine was closed, before the step returned and its checkpoint was
// written) runs again from its beginning after the restart. Side effects
// inside one step are therefore at-least-once. Make them idempotent: pass
// RunContext.IdempotencyKey (stable for a run, step and attempt, and the
// same when an interrupted attempt is re-run after a restart) to the
// external system so that it can drop the duplicate.
//
// A step that returns an error is retried according to its RetryPolicy,
// each retry being a new attempt with a new idempotency key. Attempts, the
// time of the next retry, durable timers (RunContext.Sleep) and the signals
// a completed step consumed are recorded in the store, so a restart
// neither forgets them nor restarts their clocks.
//
// # Signals and timers
//
// Signal stores a named payload for a run, even while no process is
// running it; RunContext.WaitSignal delivers the run's signals of that name
// in the order they were sent, each to one wait. A signal counts as
// consumed only when the step that received it completes: a step that is
// re-run (after a crash or an error) receives the same signal again.
//
// RunContext.Sleep stores its wake-up time before sleeping; a re-run of the
// same attempt (after a restart) finds the stored time and sleeps only for
// what is left. Timers are matched by their order within the attempt, so a
// step must make its Sleep and WaitSignalFor calls in the same order each
// time it runs.
//
// # Ownership
//
// Each run is run by one Engine at a time. The bbolt store is one
// process's (it holds a file lock). A store that several Engines share
// implements Leaser (the Redis store does): an Engine runs a run only
// while it holds the run's lease, renews it every third of
// Options.LeaseTTL, and writes every checkpoint with the fencing token
// that came with the lease, so that an Engine that lost its lease (it was
// paused, or cut off from the store, past the TTL) has its writes refused
// and stops the run. Resume, and from then on every third of the TTL,
// takes over the runs whose lease expired: those of a server that died.
// A signal sent through another Engine reaches a waiting step within a
// third of the TTL; Cancel of a run another Engine runs asks it to stop
// and waits until it has.
//
// # Stores
//
// The stores live in their own packages, so that this one depends on
// neither database: agents/durable/bolt (embedded, the default) and
// agents/durable/redis. agents/durable/durabletest is the conformance
// suite a Store must pass.
package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors. Failures are wrapped with the "durable:" prefix and %w, so test
// them with errors.Is.
var (
	ErrNotFound         = errors.New("durable: run not found")
	ErrUnknownWorkflow  = errors.New("durable: unknown workflow")
	ErrInvalidWorkflow  = errors.New("durable: invalid workflow")
	ErrDuplicate        = errors.New("durable: workflow already registered")
	ErrClosed           = errors.New("durable: engine closed")
	ErrNotFinished      = errors.New("durable: run not finished")
	ErrRunFinished      = errors.New("durable: run already finished")
	ErrRunFailed        = errors.New("durable: run failed")
	ErrRunTimeout       = errors.New("durable: run timed out")
	ErrStepTimeout      = errors.New("durable: step timed out")
	ErrDefinitionChange = errors.New("durable: workflow steps changed since the run started")
	ErrInvalidInput     = errors.New("durable: invalid input")
	ErrCancelled        = errors.New("durable: run cancelled")
	// ErrConflict: a caller-chosen run ID is in use by a run of another
	// workflow or with another input.
	ErrConflict = errors.New("durable: run ID in use with another workflow or input")
	// ErrInvalidID: a caller-chosen run ID that is empty, too long, or has
	// characters other than letters, digits and "-_.:".
	ErrInvalidID = errors.New("durable: invalid run ID")
)

// Workflow is a named sequence of steps run in order. The last step's
// output is the run's result.
type Workflow struct {
	Name  string
	Steps []Step
	// Timeout bounds a whole run, from Start, across restarts (the deadline
	// is stored with the run). 0: no limit.
	Timeout time.Duration
	// InputSchema is the JSON Schema of the run's input, shown to models by
	// StartTool. Nil: any JSON object.
	InputSchema json.RawMessage
	// CheckInput, if set, vets a run's input before it is stored: Start
	// fails with its error, wrapped in ErrInvalidInput.
	CheckInput func(input json.RawMessage) error
}

// Step is one unit of work that is checkpointed when it completes.
type Step struct {
	// Name identifies the step within its workflow; names must be unique.
	Name string
	// Run does the work. ctx is cancelled when the step times out, the run
	// times out, or the Engine closes; Run must return promptly then. The
	// output must be JSON (nil is stored as null); use Func for typed
	// outputs. Return Permanent(err) for an error that retrying cannot fix.
	Run func(ctx context.Context, r *RunContext) (json.RawMessage, error)
	// Timeout bounds one execution of the step (a re-run after a restart
	// gets the full timeout again). 0: no limit other than the run's.
	Timeout time.Duration
	// Retry says how often and how soon a failed step is tried again.
	Retry RetryPolicy
	// Wait, if set, makes the step one that only waits, on a durable
	// timer or for a signal, and Run must be nil: Register makes its Run
	// from Wait. An engine that keeps timers and signals itself
	// (agents/durable/temporal) runs such a step without calling Run.
	Wait *Wait
}

// Wait describes a step that only waits: Sleep on a durable timer, or for
// the signal named Signal, bounded by Timeout. Exactly one of Sleep and
// Signal is set. The output of a sleep is null, that of a signal wait the
// signal's payload.
type Wait struct {
	Sleep  time.Duration
	Signal string
	// Timeout bounds a signal wait (a durable timer; 0: no bound). When it
	// passes, the output is Default, or, with Default nil, the step fails
	// for good with an error wrapping ErrNoSignal.
	Timeout time.Duration
	Default json.RawMessage
}

// ErrNoSignal: a signal wait's Timeout passed without the signal and
// without a default.
var ErrNoSignal = errors.New("durable: no signal in time")

func (w *Wait) valid() bool {
	return (w.Sleep > 0) != (w.Signal != "") && w.Timeout >= 0 && (w.Signal != "" || w.Timeout == 0 && w.Default == nil)
}

// run is the Run of a Wait step on Engine.
func (w *Wait) run(ctx context.Context, r *RunContext) (json.RawMessage, error) {
	if w.Sleep > 0 {
		return nil, r.Sleep(ctx, w.Sleep)
	}
	if w.Timeout == 0 {
		return r.WaitSignal(ctx, w.Signal)
	}
	p, ok, err := r.WaitSignalFor(ctx, w.Signal, w.Timeout)
	switch {
	case err != nil:
		return nil, err
	case ok:
		return p, nil
	case w.Default != nil:
		return w.Default, nil
	}
	return nil, Permanent(fmt.Errorf("%w: %q within %v", ErrNoSignal, w.Signal, w.Timeout))
}

// RetryPolicy retries a failed step with exponential backoff: the wait
// before attempt n+1 is Backoff·2^(n-1), at most MaxBackoff.
type RetryPolicy struct {
	// MaxAttempts is the most attempts, the first included. 0 or 1: no
	// retries.
	MaxAttempts int
	// Backoff is the wait before the first retry. 0: one second.
	Backoff time.Duration
	// MaxBackoff caps the wait. 0: one minute.
	MaxBackoff time.Duration
}

func (p RetryPolicy) delay(attempt int) time.Duration {
	base, limit := p.Backoff, p.MaxBackoff
	if base <= 0 {
		base = time.Second
	}
	if limit <= 0 {
		limit = time.Minute
	}
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (p RetryPolicy) attempts() int { return max(p.MaxAttempts, 1) }

// Delay returns the wait before attempt+1, after attempt failed.
func (p RetryPolicy) Delay(attempt int) time.Duration { return p.delay(attempt) }

// Attempts returns the most attempts, the first included (at least 1).
func (p RetryPolicy) Attempts() int { return p.attempts() }

// Func adapts a step function with a typed output: the output is encoded
// as JSON.
func Func[T any](fn func(ctx context.Context, r *RunContext) (T, error)) func(context.Context, *RunContext) (json.RawMessage, error) {
	return func(ctx context.Context, r *RunContext) (json.RawMessage, error) {
		v, err := fn(ctx, r)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, Permanent(fmt.Errorf("durable: encode output: %w", err))
		}
		return b, nil
	}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the step fails at once and so
// does the run.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Status is the state of a run.
type Status string

const (
	StatusRunning   Status = "running"   // not finished (possibly waiting for a resume)
	StatusCompleted Status = "completed" // every step completed; Result holds the last output
	StatusFailed    Status = "failed"    // a step failed for good
	StatusTimedOut  Status = "timed_out" // the workflow's Timeout passed
	StatusCancelled Status = "cancelled" // Cancel stopped it
)

// Finished reports whether s is a final status.
func (s Status) Finished() bool { return s != StatusRunning && s != "" }

// RunInfo describes a run.
type RunInfo struct {
	ID       string
	Workflow string
	Status   Status
	// Step is the step running or next to run ("" once finished).
	Step    string
	Created time.Time
	Updated time.Time
	// Error is the failure's text for failed, timed-out and cancelled
	// runs.
	Error string
	// Input is the run's input; Result the last step's output, once
	// completed.
	Input  json.RawMessage
	Result json.RawMessage
	// Steps reports each step, in workflow order.
	Steps []StepInfo
}

// StepInfo describes one step of a run.
type StepInfo struct {
	Name      string
	Completed bool
	// Attempts is how many attempts have started (a re-run of an
	// interrupted attempt after a restart is the same attempt).
	Attempts int
	// Resumes counts re-runs of interrupted attempts after restarts.
	Resumes   int
	LastError string
	// Output is the step's output once completed.
	Output json.RawMessage
}
