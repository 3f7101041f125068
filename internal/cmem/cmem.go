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
	"sync/atomic"
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
// process. An explicit MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ in the
// environment, or GLIBC_TUNABLES, is left to win: glibc read it at start,
// and Tune does not override what the operator chose.
func Tune() {
	tuneOnce.Do(func() {
		if !envSet() {
			C.voiced_mallopt(C.M_MMAP_THRESHOLD, MmapThreshold)
			C.voiced_mallopt(C.M_ARENA_MAX, Arenas)
		}
	})
}

// trimGap bounds how often Trim walks the arenas.
const trimGap = time.Second

var (
	trimMu   sync.Mutex
	trimLast time.Time
	trimDue  atomic.Bool
)

// Trim asks the allocator to return free memory to the system. It is
// cheap to call after every release of a native object: calls closer than
// a second apart are folded into one, run on its own goroutine.
func Trim() {
	if !trimDue.CompareAndSwap(false, true) {
		return // one is pending
	}
	go func() {
		trimMu.Lock()
		defer trimMu.Unlock()
		if d := trimGap - time.Since(trimLast); d > 0 {
			time.Sleep(d)
		}
		trimDue.Store(false)
		C.voiced_trim()
		trimLast = time.Now()
	}()
}

// TrimNow returns free memory to the system at once, and waits.
func TrimNow() {
	trimMu.Lock()
	defer trimMu.Unlock()
	C.voiced_trim()
	trimLast = time.Now()
}
