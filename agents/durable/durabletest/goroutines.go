package durabletest

import (
	"runtime"
	"testing"
	"time"
)

// CheckGoroutines fails the test if, after fn's cleanup, more goroutines
// run than before (waiting a bounded while for exiting ones).
func CheckGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		limit := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(limit) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}
