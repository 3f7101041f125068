package cmem

import (
	"sync"
	"testing"
	"time"
)

// TestTrimFolds: calls to Trim from many goroutines at once fold into few
// trims, none of which holds the caller up; TrimNow waits for its own.
func TestTrimFolds(t *testing.T) {
	Tune()
	Tune() // once per process
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for range 100 {
				Trim()
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("6400 calls to Trim took %v", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for trimDue.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the folded trim never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	TrimNow()
	trimMu.Lock()
	last := trimLast
	trimMu.Unlock()
	if time.Since(last) > 5*time.Second {
		t.Errorf("TrimNow did not trim (last %v)", last)
	}
}
