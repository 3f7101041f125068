package cmem

import (
	"sync"
	"testing"
	"time"
)

// TestTrimFolds: calls to Trim from many goroutines at once never block
// and fold into a trim the trimmer runs soon after.
func TestTrimFolds(t *testing.T) {
	Tune()
	Tune() // once per process
	trimMu.Lock()
	before := trimLast
	trimMu.Unlock()
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
	for {
		trimMu.Lock()
		last := trimLast
		trimMu.Unlock()
		if last.After(before) && last.After(start) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no trim ran after the calls to Trim")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
