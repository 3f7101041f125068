// Package cmem tunes the C allocator (glibc's malloc) that the native
// libraries voiced links (pocketsphinx, ONNX Runtime, flite, libopus) share,
// so that the memory they free goes back to the system.
//
// Left alone, glibc keeps what concurrent cgo work frees: each OS thread that
// allocates under contention gets an arena of its own (up to eight per core),
// freed memory stays in those arenas, and after the first large block is
// freed the threshold above which blocks are mapped on their own rises to
// its size, so the next models (tens of megabytes each) land in the arenas
// too. A burst of concurrent sessions then leaves hundreds of megabytes
// resident for good. Tune fixes the mapping threshold and caps the arenas;
// Trim hands free arena memory back after native objects are released.
package cmem

/*
#include <malloc.h>

static int voiced_mallopt(int param, int value) { return mallopt(param, value); }
static int voiced_trim(void) { return malloc_trim(0); }
*/
import "C"

import (
	"sync"
	"time"
)

// Defaults for Tune.
const (
	// MmapThreshold: blocks this size or larger are mapped on their own
	// and unmapped when freed (glibc's initial value, kept fixed).
	MmapThreshold = 128 << 10
	// Arenas caps glibc's arenas (its default is eight per core).
	Arenas = 2
)

var tuneOnce sync.Once

// Tune sets the allocator's mapping threshold and arena cap, once per
// process, and starts the goroutine that runs Trim's trims. An explicit
// MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ in the environment, or
// GLIBC_TUNABLES, is left to win: glibc read it at start, and Tune does not
// override what the operator chose. Call it from the process's start, not
// from a testing/synctest bubble (its goroutine lives as long as the
// process).
func Tune() {
	tuneOnce.Do(func() {
		if !envSet() {
			C.voiced_mallopt(C.M_MMAP_THRESHOLD, MmapThreshold)
			C.voiced_mallopt(C.M_ARENA_MAX, Arenas)
		}
		go trimmer()
	})
}

// trimGap bounds how often the trimmer walks the arenas.
const trimGap = time.Second

var (
	trims    = make(chan struct{}, 1) // a trim is asked for
	trimMu   sync.Mutex
	trimLast time.Time
	// Under trimMu: see Trims.
	trimCount            int
	trimTotal, trimWorst time.Duration
)

// Trim asks for the allocator to return free memory to the system. It
// never blocks, and is cheap to call after every release of a native
// object: the trimmer Tune started trims at most once a second, and once
// more after the last ask. Before Tune it does nothing.
func Trim() {
	select {
	case trims <- struct{}{}:
	default: // one is pending already
	}
}

func trimmer() {
	for range trims {
		TrimNow()
		time.Sleep(trimGap)
	}
}

// TrimNow returns free memory to the system at once, and waits.
func TrimNow() {
	trimMu.Lock()
	defer trimMu.Unlock()
	start := time.Now()
	C.voiced_trim()
	trimLast = time.Now()
	took := trimLast.Sub(start)
	trimCount++
	trimTotal += took
	trimWorst = max(trimWorst, took)
}

// Trims returns how many trims ran in this process, their total time and
// the longest: glibc holds each arena's lock while it trims it, so native
// code allocating meanwhile waits.
func Trims() (n int, total, worst time.Duration) {
	trimMu.Lock()
	defer trimMu.Unlock()
	return trimCount, trimTotal, trimWorst
}
