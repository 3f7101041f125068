package durable

import (
	"context"
	"encoding/json"
	"time"
)

// Store keeps runs and their signals. Records are opaque bytes owned by the
// Engine; a store only files them. A store must make a write durable before
// it returns (a crash right after must not lose it). Implementations are
// safe for concurrent use; the caller that opened a store closes it (the
// Engine never does).
type Store interface {
	// PutRun writes run id's record, replacing any earlier one, and files
	// the run among the active runs unless finished is set. The record and
	// the active flag change together.
	PutRun(ctx context.Context, id string, record []byte, finished bool) error
	// CreateRun writes run id's record and files it among the active runs,
	// both at once, only if no run id exists; created reports whether it
	// did.
	CreateRun(ctx context.Context, id string, record []byte) (created bool, err error)
	// GetRun returns run id's record, or an error wrapping ErrNotFound.
	GetRun(ctx context.Context, id string) ([]byte, error)
	// ActiveRuns lists the runs last written with finished unset.
	ActiveRuns(ctx context.Context) ([]string, error)
	// AppendSignal adds a signal to run id's list; ErrNotFound if the run
	// does not exist.
	AppendSignal(ctx context.Context, id string, signal []byte) error
	// Signals returns run id's signals in the order they were appended
	// (the index of a signal never changes).
	Signals(ctx context.Context, id string) ([][]byte, error)
}

// runRecord is what the engine stores for a run, as JSON.
type runRecord struct {
	V        int             `json:"v"`
	ID       string          `json:"id"`
	Workflow string          `json:"workflow"`
	Input    json.RawMessage `json:"input"`
	Status   Status          `json:"status"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
	Deadline time.Time       `json:"deadline,omitzero"`
	Steps    []stepRecord    `json:"steps"`
	// Consumed holds the indexes of signals consumed by completed steps.
	Consumed []int `json:"consumed,omitempty"`
}

type stepRecord struct {
	Name   string          `json:"name"`
	Done   bool            `json:"done,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	// Attempt is the number of the latest attempt, 0 before the first.
	Attempt int `json:"attempt,omitempty"`
	// Running: attempt Attempt started and has not ended. Found set at
	// resume, the attempt was interrupted and is run again.
	Running bool `json:"running,omitempty"`
	Resumes int  `json:"resumes,omitempty"`
	// RetryAt is when the next attempt may start.
	RetryAt   time.Time `json:"retry_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Timers are the wake-up times of the running attempt's durable
	// timers, in the order they were set.
	Timers []time.Time `json:"timers,omitempty"`
}

type signalRecord struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
	At      time.Time       `json:"at"`
}

// Clock tells time and makes timers; the Engine's durable timers, backoff
// and timeouts use it. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
