// Package sphinx is an embedded, offline speech recognizer: CMU PocketSphinx
// (the 5prealpha C library) driven through cgo.
//
// A Recognizer holds a pool of loaded decoders. Loading one reads the
// acoustic model, language model and dictionary and takes hundreds of
// milliseconds, so New loads the first one up front and streams borrow a
// decoder for the life of one utterance and return it on Close. Decoders run
// the forward tree search only (no flat pass, no lattice best path), which
// makes the final hypothesis cost a backtrace rather than a second search.
//
// Building the package needs cgo and the pocketsphinx and sphinxbase
// development files (pkg-config names "pocketsphinx" and "sphinxbase");
// the default model paths are those of Debian's pocketsphinx-en-us package.
//
// The C libraries log through process-wide state; this package turns that
// logging off for the whole process the first time it loads a decoder.
package sphinx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/stt"
)

// Default model paths (Debian's pocketsphinx-en-us package).
const (
	DefaultHMM  = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultLM   = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"
	DefaultDict = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultInterimEvery = 300 * time.Millisecond
	DefaultPool         = 4
	DefaultSpotMax      = 3 * time.Second
)

var (
	// ErrClosed is returned by Open after the Recognizer was closed.
	ErrClosed = errors.New("sphinx: recognizer closed")
	// ErrFinished is returned by Send or Finish after Finish.
	ErrFinished = errors.New("sphinx: utterance already finished")
	// ErrDecoder reports a failure inside pocketsphinx (model loading,
	// utterance start/end, audio processing).
	ErrDecoder = errors.New("sphinx: decoder failed")
)

// Config configures a Recognizer. The zero value uses the Debian model paths
// and the defaults above.
type Config struct {
	HMM  string `toml:"hmm"`  // acoustic model directory
	LM   string `toml:"lm"`   // n-gram language model (ARPA or binary)
	Dict string `toml:"dict"` // pronunciation dictionary
	// InterimEvery is how much audio passes between interim hypotheses.
	InterimEvery time.Duration `toml:"interim_every"`
	// Pool is how many idle decoders are kept for reuse; decoders returned
	// beyond that are freed. More than Pool streams may be open at once (a
	// decoder is then loaded for each, slowly).
	Pool int `toml:"pool"`
	// Spot is a small vocabulary (interrupt words, backchannels, fillers)
	// to spot: the final result of an utterance no longer than SpotMax,
	// opened with OpenSpotting, carries, in Spotted, what a second pass over its audio with a
	// grammar of only these words heard, with their times. The language
	// model mishears short words said alone ("wait" as "lake", "stop" as
	// "top", worse over a phone line); a search that may choose among
	// these words only finds them where they were said, and its fillers
	// take up the rest. Words not in the dictionary are left out (a
	// hyphenated one is taken by its parts). Empty: no second pass.
	Spot []string `toml:"spot"`
	// SpotMax is the longest utterance given the second pass (default
	// 3 s): commands and backchannels are short, and the pass costs a
	// fraction of the first.
	SpotMax time.Duration `toml:"spot_max"`
}

// Recognizer recognizes 16 kHz mono speech. It is safe for concurrent use;
// each open Stream owns one decoder.
type Recognizer struct {
	cfg          Config
	interimEvery int // samples
	spotMax      int // samples (0: no spotting)

	mu     sync.Mutex
	idle   []*decoder
	closed bool
}

var (
	_ stt.Recognizer = (*Recognizer)(nil)
	_ stt.Spotter    = (*Recognizer)(nil)
)

// New validates cfg, applies defaults and loads one decoder so the first
// stream does not pay for model loading.
func New(cfg Config) (*Recognizer, error) {
	if cfg.HMM == "" {
		cfg.HMM = DefaultHMM
	}
	if cfg.LM == "" {
		cfg.LM = DefaultLM
	}
	if cfg.Dict == "" {
		cfg.Dict = DefaultDict
	}
	if cfg.InterimEvery == 0 {
		cfg.InterimEvery = DefaultInterimEvery
	}
	if cfg.Pool == 0 {
		cfg.Pool = DefaultPool
	}
	if cfg.SpotMax == 0 {
		cfg.SpotMax = DefaultSpotMax
	}
	if cfg.InterimEvery < 0 {
		return nil, fmt.Errorf("sphinx: negative InterimEvery %v", cfg.InterimEvery)
	}
	if cfg.Pool < 0 {
		return nil, fmt.Errorf("sphinx: negative Pool %d", cfg.Pool)
	}
	if err := checkPath("HMM", cfg.HMM, true); err != nil {
		return nil, err
	}
	if err := checkPath("LM", cfg.LM, false); err != nil {
		return nil, err
	}
	if err := checkPath("Dict", cfg.Dict, false); err != nil {
		return nil, err
	}
	d, err := newDecoder(&cfg)
	if err != nil {
		return nil, err
	}
	r := &Recognizer{cfg: cfg, interimEvery: frame.Mono16k.Samples(cfg.InterimEvery)}
	if d.spot && cfg.SpotMax > 0 {
		r.spotMax = frame.Mono16k.Samples(cfg.SpotMax)
	}
	if r.interimEvery < 1 {
		r.interimEvery = 1
	}
	r.put(d)
	return r, nil
}

func checkPath(field, path string, dir bool) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("sphinx: %s: %w", field, err)
	}
	if st.IsDir() != dir {
		want := "a file"
		if dir {
			want = "a directory"
		}
		return fmt.Errorf("sphinx: %s: %s is not %s", field, path, want)
	}
	return nil
}

// Format is 16 kHz mono.
func (r *Recognizer) Format() frame.Format { return frame.Mono16k }

// Open takes an idle decoder (loading a new one when none is idle) and
// starts an utterance on it. The caller must Close the stream to give the
// decoder back. ctx is checked before the (possibly slow) decoder load; model
// loading itself cannot be cancelled.
func (r *Recognizer) Open(ctx context.Context) (stt.Stream, error) {
	return r.open(ctx, false)
}

// OpenSpotting implements stt.Spotter: Open, and the final result of an
// utterance no longer than SpotMax carries the words of Spot heard in it
// (nothing more without Spot). The second pass runs in Finish, before the
// final is queued.
func (r *Recognizer) OpenSpotting(ctx context.Context) (stt.Stream, error) {
	return r.open(ctx, r.spotMax > 0)
}

func (r *Recognizer) open(ctx context.Context, spot bool) (stt.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sphinx: open: %w", err)
	}
	d, err := r.get()
	if err != nil {
		return nil, err
	}
	if err := d.start(); err != nil {
		d.free()
		return nil, fmt.Errorf("sphinx: open: %w", err)
	}
	return newStream(r, d, spot), nil
}

// Close frees the idle decoders and makes Open fail with ErrClosed. Decoders
// of streams still open are freed when those streams are closed. Idempotent.
func (r *Recognizer) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.closed = true
	r.mu.Unlock()
	for _, d := range idle {
		d.free()
	}
	return nil
}

// Idle reports how many loaded decoders wait in the pool.
func (r *Recognizer) Idle() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.idle)
}

func (r *Recognizer) get() (*decoder, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(r.idle); n > 0 {
		d := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return d, nil
	}
	r.mu.Unlock()
	d, err := newDecoder(&r.cfg)
	if err != nil {
		return nil, fmt.Errorf("sphinx: open: %w", err)
	}
	return d, nil
}

// put returns an idle decoder (no utterance in progress) to the pool, or
// frees it when the pool is full or closed.
func (r *Recognizer) put(d *decoder) {
	r.mu.Lock()
	if !r.closed && len(r.idle) < r.cfg.Pool {
		r.idle = append(r.idle, d)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	d.free()
}
