package durable

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leaser is implemented by stores that several Engines (several servers)
// share. Each run is owned by one Engine at a time through a lease, and
// every write of an owner carries the fencing token its lease came with:
// once another Engine has acquired the lease (after the first one's
// expired: it crashed, or paused for longer than the lease), the first
// one's writes are refused, so a stale owner cannot overwrite progress.
type Leaser interface {
	// AcquireLease gives owner the lease of run id for ttl unless another
	// owner holds an unexpired one (ErrLeaseHeld), and returns a fencing
	// token greater than every token given before for id.
	AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (token int64, err error)
	// RenewLease extends the lease to ttl from now if token is still the
	// run's latest; otherwise it fails with ErrLeaseLost.
	RenewLease(ctx context.Context, id, owner string, token int64, ttl time.Duration) error
	// PutRunFenced is PutRun done only if token is still the run's latest
	// (ErrLeaseLost otherwise), checked and written atomically.
	PutRunFenced(ctx context.Context, id string, token int64, record []byte, finished bool) error
	// ReleaseLease ends the lease early if token is still the latest, so
	// that another Engine may take the run at once.
	ReleaseLease(ctx context.Context, id string, token int64) error
}

// Lease errors.
var (
	ErrLeaseHeld = errors.New("durable: run leased by another engine")
	ErrLeaseLost = errors.New("durable: lease lost to another engine")
)

// Defaults of the lease options.
const (
	DefaultLeaseTTL = 15 * time.Second
)

// Leases expire on the store's clock, in real time: the lease and takeover
// loops use real timers, not Options.Clock (which tests fake).
var leaseClock Clock = realClock{}

// leaseLoop renews r's lease every third of the TTL, and looks for a
// cancellation sent from another engine. When the lease is lost (or cannot
// be renewed for a whole TTL, after which another engine may have it), it
// cancels the run with ErrLeaseLost: the runner stops without writing.
func (r *runner) leaseLoop(ctx context.Context) {
	e := r.e
	last := leaseClock.Now()
	for {
		tm := leaseClock.NewTimer(e.leaseTTL / 3)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C():
		}
		err := e.leaser.RenewLease(ctx, r.rec.ID, e.owner, r.token, e.leaseTTL)
		switch {
		case err == nil:
			last = leaseClock.Now()
		case errors.Is(err, ErrLeaseLost):
			e.log.Warn("durable: lease lost; another engine runs it now", "run", r.rec.ID)
			r.cancel(ErrLeaseLost)
			return
		case ctx.Err() != nil:
			return
		default:
			e.log.Warn("durable: lease renewal failed", "run", r.rec.ID, "err", err)
			if leaseClock.Now().Sub(last) >= e.leaseTTL {
				r.cancel(ErrLeaseLost)
				return
			}
		}
		if r.cancelRequested(ctx) {
			r.cancel(ErrCancelled)
			return
		}
		r.poke() // a signal may have come through another engine
	}
}

// cancelRequested reports whether another engine asked for r's run to be
// cancelled.
func (r *runner) cancelRequested(ctx context.Context) bool {
	sigs, err := r.e.store.Signals(ctx, r.rec.ID)
	if err != nil {
		return false
	}
	for _, b := range sigs {
		if isCancelRecord(b) {
			return true
		}
	}
	return false
}

// takeover resumes, every third of the lease TTL, the runs whose owner
// stopped renewing their lease, until the Engine closes.
func (e *Engine) takeoverLoop() {
	defer e.wg.Done()
	for {
		tm := leaseClock.NewTimer(e.leaseTTL / 3)
		select {
		case <-e.ctx.Done():
			tm.Stop()
			return
		case <-tm.C():
		}
		if n, err := e.Resume(e.ctx); err != nil && e.ctx.Err() == nil {
			e.log.Warn("durable: takeover", "err", err)
		} else if n > 0 {
			e.log.Info("durable: runs taken over", "runs", n)
		}
	}
}

// cancelRemote cancels a run that is not running here: it takes the lease
// and records the end, or, if another engine holds it, asks that engine
// (a cancel record among the signals, which its lease loop reads) and
// waits, within ctx, until the run is recorded as finished.
func (e *Engine) cancelRemote(ctx context.Context, rec *runRecord) error {
	token, err := e.leaser.AcquireLease(ctx, rec.ID, e.owner, e.leaseTTL)
	if err == nil {
		defer e.leaser.ReleaseLease(context.WithoutCancel(ctx), rec.ID, token)
		// Read again under the lease: the last owner may have written since.
		if rec, err = e.get(ctx, rec.ID); err != nil {
			return err
		}
		if rec.Status.Finished() {
			return fmt.Errorf("%w: %s", ErrRunFinished, rec.ID)
		}
		markCancelled(rec)
		return e.putFenced(ctx, rec, token)
	}
	if !errors.Is(err, ErrLeaseHeld) {
		return fmt.Errorf("durable: lease %s: %w", rec.ID, err)
	}
	if err := e.store.AppendSignal(ctx, rec.ID, cancelRecord); err != nil {
		return fmt.Errorf("durable: store cancel: %w", err)
	}
	for {
		cur, err := e.get(ctx, rec.ID)
		if err != nil {
			return err
		}
		if cur.Status.Finished() {
			return nil
		}
		tm := leaseClock.NewTimer(e.leaseTTL / 6)
		select {
		case <-tm.C():
		case <-ctx.Done():
			tm.Stop()
			return context.Cause(ctx)
		}
	}
}

func markCancelled(rec *runRecord) {
	rec.Status, rec.Error = StatusCancelled, ErrCancelled.Error()
	for i := range rec.Steps {
		rec.Steps[i].Running = false
	}
}

// cancelRecord is stored among a run's signals to ask its owner to cancel
// it; WaitSignal never delivers it.
var cancelRecord = []byte(`{"name":"","cancel":true,"payload":null}`)

func isCancelRecord(b []byte) bool {
	return string(b) == string(cancelRecord)
}
