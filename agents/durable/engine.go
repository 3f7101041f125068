package durable

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Options configure an Engine. The zero value works.
type Options struct {
	// Logger receives step and run events. Nil: discard.
	Logger *slog.Logger
	// Clock drives timers, backoff and timeouts. Nil: the system clock.
	Clock Clock
	// Notify receives RunContext.Notify messages, on the step's goroutine;
	// it must not block for long. Nil: messages are dropped. A program
	// routes them by run ID, for example to a session's speech output.
	Notify func(runID, message string)
	// Owner names this Engine in the leases of a store that several
	// engines share (a Leaser). Default: a random name; it must differ
	// between engines.
	Owner string
	// LeaseTTL is how long a run's lease lasts without renewal, on a
	// Leaser store: an engine renews its runs' leases every third of it,
	// and takes over other engines' runs whose lease expired. A dead
	// server's runs are resumed elsewhere between LeaseTTL and 4/3 of it
	// after its last renewal. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// Engine runs workflows and keeps their state in a Store. Its methods are
// safe for concurrent use. Each run executes on a goroutine of its own that
// lives until the run finishes or Close is called.
type Engine struct {
	store  Store
	log    *slog.Logger
	clock  Clock
	notify func(runID, message string)

	ctx    context.Context // cancelled with errClosing by Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	workflows map[string]*Workflow
	runners   map[string]*runner
	waiters   map[string]chan struct{} // closed when the run finishes here
	cancelled map[string]bool          // cancelled while not running here

	leaser   Leaser // the store, when it is one; nil otherwise
	owner    string
	leaseTTL time.Duration
	takeover sync.Once // starts the takeover loop (on a Leaser)
}

// errClosing is the cause that Close cancels runs with; a run stopped by
// it is left unfinished in the store, to be resumed.
var errClosing = fmt.Errorf("%w", ErrClosed)

// New returns an Engine over store. It runs nothing until Start or Resume.
func New(store Store, opts Options) (*Engine, error) {
	if store == nil {
		return nil, errors.New("durable: nil store")
	}
	e := &Engine{
		store:     store,
		log:       opts.Logger,
		clock:     opts.Clock,
		notify:    opts.Notify,
		workflows: make(map[string]*Workflow),
		runners:   make(map[string]*runner),
		waiters:   make(map[string]chan struct{}),
		cancelled: make(map[string]bool),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = realClock{}
	}
	if l, ok := store.(Leaser); ok {
		e.leaser, e.owner, e.leaseTTL = l, opts.Owner, opts.LeaseTTL
		if e.owner == "" {
			e.owner = "engine_" + newRunID()[4:]
		}
		if e.leaseTTL <= 0 {
			e.leaseTTL = DefaultLeaseTTL
		}
	}
	e.ctx, e.cancel = context.WithCancelCause(context.Background())
	return e, nil
}

// Register adds a workflow. Names of workflows, and of steps within one,
// must be unique and non-empty; every step needs a Run function.
func (e *Engine) Register(wf Workflow) error {
	if wf.Name == "" || len(wf.Steps) == 0 {
		return fmt.Errorf("%w: %q needs a name and steps", ErrInvalidWorkflow, wf.Name)
	}
	wf, err := CheckWorkflow(wf)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.workflows[wf.Name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, wf.Name)
	}
	e.workflows[wf.Name] = &wf
	return nil
}

// CheckWorkflow checks wf as Register does and returns a copy whose Wait
// steps have their Run. Other engines than Engine use it.
func CheckWorkflow(wf Workflow) (Workflow, error) {
	if wf.Name == "" || len(wf.Steps) == 0 {
		return wf, fmt.Errorf("%w: %q needs a name and steps", ErrInvalidWorkflow, wf.Name)
	}
	seen := make(map[string]bool)
	wf.Steps = append([]Step(nil), wf.Steps...)
	for i, s := range wf.Steps {
		if s.Wait != nil {
			if s.Run != nil || !s.Wait.valid() {
				return wf, fmt.Errorf("%w: %q: step %q: a Wait step has no Run, and sleeps or waits for one signal", ErrInvalidWorkflow, wf.Name, s.Name)
			}
			wf.Steps[i].Run = s.Wait.run
			s.Run = s.Wait.run
		}
		if s.Name == "" || s.Run == nil || seen[s.Name] {
			return wf, fmt.Errorf("%w: %q: step %q needs a unique name and a Run function", ErrInvalidWorkflow, wf.Name, s.Name)
		}
		seen[s.Name] = true
	}
	return wf, nil
}

// Workflow returns the registered workflow of that name.
func (e *Engine) Workflow(name string) (Workflow, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wf, ok := e.workflows[name]
	if !ok {
		return Workflow{}, false
	}
	return *wf, true
}

// Start begins a run of the named workflow with input (a json.RawMessage
// is used as is; anything else is encoded as JSON) and returns its ID once
// the run is stored. ctx bounds only that write: the run itself lives on
// until it finishes or the Engine closes (a barge-in does not cancel it).
func (e *Engine) Start(ctx context.Context, workflow string, input any) (string, error) {
	id := newRunID()
	if _, err := e.start(ctx, id, workflow, input); err != nil {
		return "", err
	}
	return id, nil
}

// StartWithID is Start with a run ID the caller chooses (letters, digits
// and "-_.:", at most 128), which makes starting idempotent: if run id
// exists already, with the same workflow and an equal input (as JSON
// values), nothing starts and created is false; with another workflow or
// input the error wraps ErrConflict. A finished run counts: its ID is not
// reused.
func (e *Engine) StartWithID(ctx context.Context, id, workflow string, input any) (created bool, err error) {
	if !validID(id) {
		return false, fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return e.start(ctx, id, workflow, input)
}

// ValidRunID reports whether id is a valid caller-chosen run ID.
func ValidRunID(id string) bool { return validID(id) }

// NewRunID returns a new random run ID, as Start makes.
func NewRunID() string { return newRunID() }

// SameJSON reports whether a and b encode equal JSON values.
func SameJSON(a, b json.RawMessage) bool { return sameJSON(a, b) }

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

func (e *Engine) start(ctx context.Context, id, workflow string, input any) (bool, error) {
	in, err := encode(input)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	wf, ok := e.workflows[workflow]
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownWorkflow, workflow)
	}
	if wf.CheckInput != nil {
		if err := wf.CheckInput(in); err != nil {
			return false, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	now := e.clock.Now()
	rec := &runRecord{
		V: 1, ID: id, Workflow: workflow, Input: in, Status: StatusRunning,
		Created: now, Updated: now,
	}
	if wf.Timeout > 0 {
		rec.Deadline = now.Add(wf.Timeout)
	}
	for _, s := range wf.Steps {
		rec.Steps = append(rec.Steps, stepRecord{Name: s.Name})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("durable: encode run: %w", err)
	}
	created, err := e.store.CreateRun(ctx, id, b)
	if err != nil {
		return false, fmt.Errorf("durable: store run %s: %w", id, err)
	}
	if !created {
		old, err := e.get(ctx, id)
		if err != nil {
			return false, err
		}
		if old.Workflow != workflow || !sameJSON(old.Input, in) {
			return false, fmt.Errorf("%w: %s is a run of %s", ErrConflict, id, old.Workflow)
		}
		return false, nil
	}
	e.log.Info("durable: run started", "run", rec.ID, "workflow", workflow)
	if _, err := e.launch(ctx, wf, rec); err != nil {
		return false, err
	}
	return true, nil
}

// sameJSON reports whether a and b encode equal JSON values.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// Resume starts every unfinished run in the store that is not running
// already, continuing each after its last checkpoint. Call it once the
// workflows are registered, typically at startup. On a store that several
// engines share (a Leaser), it starts only the runs whose lease it gets,
// and from then on looks for runs to take over every third of LeaseTTL
// until Close. Runs of workflows that
// are not registered are skipped (and logged). A run that cannot be
// loaded does not stop the others: its error is joined into the returned
// one. It returns how many runs it resumed.
func (e *Engine) Resume(ctx context.Context) (int, error) {
	ids, err := e.store.ActiveRuns(ctx)
	if err != nil {
		return 0, fmt.Errorf("durable: list runs: %w", err)
	}
	n := 0
	var errs []error
	for _, id := range ids {
		e.mu.Lock()
		_, running := e.runners[id]
		e.mu.Unlock()
		if running {
			continue
		}
		rec, err := e.get(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec.Status.Finished() {
			continue
		}
		e.mu.Lock()
		wf, ok := e.workflows[rec.Workflow]
		e.mu.Unlock()
		if !ok {
			e.log.Warn("durable: run of unregistered workflow not resumed", "run", id, "workflow", rec.Workflow)
			continue
		}
		launched, err := e.launch(ctx, wf, rec)
		if errors.Is(err, ErrClosed) {
			return n, err
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if launched {
			e.log.Info("durable: run resumed", "run", id, "workflow", rec.Workflow)
			n++
		}
	}
	if e.leaser != nil {
		e.takeover.Do(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if !e.closed {
				e.wg.Add(1)
				go e.takeoverLoop()
			}
		})
	}
	return n, errors.Join(errs...)
}

// Signal stores a named signal with a payload (encoded like Start's input)
// for run runID, and wakes the run if it waits for it here. The signal is
// kept even if no process runs the workflow now; it is delivered after a
// resume. It fails with ErrNotFound for an unknown run and ErrRunFinished
// for a finished one.
func (e *Engine) Signal(ctx context.Context, runID, name string, payload any) error {
	p, err := encode(payload)
	if err != nil {
		return err
	}
	rec, err := e.get(ctx, runID)
	if err != nil {
		return err
	}
	if rec.Status.Finished() {
		return fmt.Errorf("%w: %s", ErrRunFinished, runID)
	}
	b, err := json.Marshal(signalRecord{Name: name, Payload: p, At: e.clock.Now()})
	if err != nil {
		return fmt.Errorf("durable: encode signal: %w", err)
	}
	if err := e.store.AppendSignal(ctx, runID, b); err != nil {
		return fmt.Errorf("durable: store signal: %w", err)
	}
	e.mu.Lock()
	r := e.runners[runID]
	e.mu.Unlock()
	if r != nil {
		r.poke()
	}
	return nil
}

// Cancel stops run runID for good and records it as cancelled. A run
// running here has its step's context cancelled (with cause
// ErrCancelled), and Cancel waits, within ctx, until it is recorded. It
// fails with ErrNotFound for an unknown run and ErrRunFinished for a
// finished one.
func (e *Engine) Cancel(ctx context.Context, runID string) error {
	rec, err := e.get(ctx, runID)
	if err != nil {
		return err
	}
	if rec.Status.Finished() {
		return fmt.Errorf("%w: %s", ErrRunFinished, runID)
	}
	e.mu.Lock()
	r := e.runners[runID]
	if r == nil && e.leaser != nil {
		e.mu.Unlock()
		if err := e.cancelRemote(ctx, rec); err != nil {
			return err
		}
		e.log.Info("durable: run cancelled", "run", runID)
		return nil
	}
	if r == nil {
		// Not running here: keep a later Resume from starting it, and
		// record the end.
		e.cancelled[runID] = true
		e.mu.Unlock()
		markCancelled(rec)
		if err := e.put(ctx, rec); err != nil {
			return err
		}
		e.log.Info("durable: run cancelled", "run", runID)
		return nil
	}
	e.mu.Unlock()
	r.cancel(ErrCancelled)
	_, err = e.Wait(ctx, runID)
	if errors.Is(err, ErrCancelled) || err == nil || errors.Is(err, ErrRunFailed) || errors.Is(err, ErrRunTimeout) {
		// Recorded (it may have finished just before being cancelled).
		return nil
	}
	return err
}

// Status describes run runID as stored.
func (e *Engine) Status(ctx context.Context, runID string) (RunInfo, error) {
	rec, err := e.get(ctx, runID)
	if err != nil {
		return RunInfo{}, err
	}
	info := RunInfo{
		ID: rec.ID, Workflow: rec.Workflow, Status: rec.Status,
		Created: rec.Created, Updated: rec.Updated, Error: rec.Error,
		Input: rec.Input, Result: rec.Result,
	}
	for _, s := range rec.Steps {
		if !s.Done && info.Step == "" && !rec.Status.Finished() {
			info.Step = s.Name
		}
		info.Steps = append(info.Steps, StepInfo{
			Name: s.Name, Completed: s.Done, Attempts: s.Attempt, Resumes: s.Resumes, LastError: s.LastError, Output: s.Output,
		})
	}
	return info, nil
}

// Result returns the result of a finished run: the last step's output for
// a completed run, an error wrapping ErrRunFailed or ErrRunTimeout for a
// failed or timed-out one, and ErrNotFinished while it runs.
func (e *Engine) Result(ctx context.Context, runID string) (json.RawMessage, error) {
	rec, err := e.get(ctx, runID)
	if err != nil {
		return nil, err
	}
	return rec.result()
}

// Wait blocks until run runID finishes on this Engine, or ctx ends, and
// returns what Result returns. A run that is unfinished in the store but
// not running here is waited for until Resume runs it.
func (e *Engine) Wait(ctx context.Context, runID string) (json.RawMessage, error) {
	for {
		e.mu.Lock()
		ch, ok := e.waiters[runID]
		if !ok {
			ch = make(chan struct{})
			e.waiters[runID] = ch
		}
		e.mu.Unlock()
		rec, err := e.get(ctx, runID)
		if err != nil {
			e.dropWaiter(runID, ch)
			return nil, err
		}
		if rec.Status.Finished() {
			e.dropWaiter(runID, ch)
			return rec.result()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func (e *Engine) dropWaiter(runID string, ch chan struct{}) {
	e.mu.Lock()
	if e.waiters[runID] == ch {
		delete(e.waiters, runID)
	}
	e.mu.Unlock()
}

// Close stops every run at once without recording anything: interrupted
// steps stay unfinished in the store and run again after a Resume (on this
// store, by a new Engine). It waits for the runs' goroutines, refuses new
// runs, and does not close the store. It is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel(errClosing)
	e.wg.Wait()
	return nil
}

func (r *runRecord) result() (json.RawMessage, error) {
	switch r.Status {
	case StatusCompleted:
		return r.Result, nil
	case StatusFailed:
		return nil, fmt.Errorf("%w: %s", ErrRunFailed, r.Error)
	case StatusTimedOut:
		return nil, fmt.Errorf("%w: %s", ErrRunTimeout, r.Error)
	case StatusCancelled:
		return nil, fmt.Errorf("%w: %s", ErrCancelled, r.ID)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFinished, r.ID)
}

// launch runs rec on a goroutine of its own, unless it runs here already,
// was cancelled, or (on a Leaser) another engine holds its lease; it
// reports whether it did.
func (e *Engine) launch(ctx context.Context, wf *Workflow, rec *runRecord) (bool, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false, ErrClosed
	}
	if _, ok := e.runners[rec.ID]; ok || e.cancelled[rec.ID] {
		e.mu.Unlock()
		return false, nil
	}
	r := &runner{e: e, wf: wf, rec: rec, wake: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancelCause(e.ctx)
	// Held in runners before the lease is asked for, so that this engine
	// never asks twice for one run (a second token would fence out the
	// first).
	e.runners[rec.ID] = r
	e.mu.Unlock()
	if e.leaser != nil {
		token, err := e.leaser.AcquireLease(ctx, rec.ID, e.owner, e.leaseTTL)
		if err == nil {
			// Read again under the lease: the last owner may have written
			// since rec was read.
			rec, err = e.get(ctx, rec.ID)
			if err == nil && rec.Status.Finished() {
				e.leaser.ReleaseLease(ctx, rec.ID, token)
				err = errLaunchSkip
			}
		}
		if err != nil {
			e.mu.Lock()
			delete(e.runners, rec.ID)
			e.mu.Unlock()
			r.cancel(context.Canceled)
			if errors.Is(err, ErrLeaseHeld) || errors.Is(err, errLaunchSkip) {
				return false, nil
			}
			return false, fmt.Errorf("durable: lease %s: %w", rec.ID, err)
		}
		r.rec, r.token = rec, token
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		delete(e.runners, rec.ID)
		r.cancel(context.Canceled)
		if e.leaser != nil {
			e.leaser.ReleaseLease(context.WithoutCancel(ctx), rec.ID, r.token)
		}
		return false, ErrClosed
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer r.cancel(context.Canceled)
		if e.leaser != nil {
			lctx, stop := context.WithCancel(r.ctx)
			e.wg.Go(func() { r.leaseLoop(lctx) })
			defer func() {
				stop()
				if !errors.Is(context.Cause(r.ctx), ErrLeaseLost) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					e.leaser.ReleaseLease(ctx, rec.ID, r.token)
				}
			}()
		}
		r.run()
		e.mu.Lock()
		delete(e.runners, rec.ID)
		if ch, ok := e.waiters[rec.ID]; ok {
			close(ch)
			delete(e.waiters, rec.ID)
		}
		e.mu.Unlock()
	}()
	return true, nil
}

var errLaunchSkip = errors.New("durable: finished meanwhile")

// putFenced is put with rec's owner's fencing token, on a Leaser.
func (e *Engine) putFenced(ctx context.Context, rec *runRecord, token int64) error {
	rec.Updated = e.clock.Now()
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("durable: encode run: %w", err)
	}
	if err := e.leaser.PutRunFenced(ctx, rec.ID, token, b, rec.Status.Finished()); err != nil {
		return fmt.Errorf("durable: store run %s: %w", rec.ID, err)
	}
	return nil
}

func (e *Engine) put(ctx context.Context, rec *runRecord) error {
	rec.Updated = e.clock.Now()
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("durable: encode run: %w", err)
	}
	if err := e.store.PutRun(ctx, rec.ID, b, rec.Status.Finished()); err != nil {
		return fmt.Errorf("durable: store run %s: %w", rec.ID, err)
	}
	return nil
}

func (e *Engine) get(ctx context.Context, id string) (*runRecord, error) {
	b, err := e.store.GetRun(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("durable: load run %s: %w", id, err)
	}
	rec := new(runRecord)
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("durable: decode run %s: %w", id, err)
	}
	return rec, nil
}

// sleepUntil waits until the clock reaches t, or ctx ends.
func (e *Engine) sleepUntil(ctx context.Context, t time.Time) error {
	d := t.Sub(e.clock.Now())
	if d <= 0 {
		return ctx.Err()
	}
	tm := e.clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// withDeadline returns a context cancelled with cause once the clock
// reaches at.
func (e *Engine) withDeadline(parent context.Context, at time.Time, cause error) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	d := at.Sub(e.clock.Now())
	if d <= 0 {
		cancel(cause)
		return ctx, func() { cancel(context.Canceled) }
	}
	tm := e.clock.NewTimer(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-tm.C():
			cancel(cause)
		case <-ctx.Done():
			tm.Stop()
		}
	}()
	return ctx, func() { cancel(context.Canceled); <-done }
}

func encode(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, fmt.Errorf("%w: not JSON", ErrInvalidInput)
		}
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return b, nil
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return "run_" + hex.EncodeToString(b[:])
}
