package browsertest

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestConsoleLogConcurrent: a writer adds lines while readers wait for
// them; every waiter sees its line, and nothing is lost or left running
// (synctest fails the test if a goroutine of the bubble is left blocked).
func TestConsoleLogConcurrent(t *testing.T) {
	synctest.Test(t, testConsoleLog)
}

func testConsoleLog(t *testing.T) {
	c := newConsoleLog()
	done := make(chan struct{})
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if !c.wait(time.Minute, fmt.Sprintf("line %d;", i), done) {
				t.Errorf("line %d not seen", i)
			}
		})
	}
	wg.Go(func() {
		for i := range n {
			c.add(fmt.Sprintf("line %d;", i), i%10 == 0, fmt.Sprint(i))
		}
	})
	wg.Wait()
	if got := len(c.lines()); got != n {
		t.Errorf("%d lines, want %d", got, n)
	}
	if got := len(c.exceptionTexts()); got != n/10 {
		t.Errorf("%d exceptions, want %d", got, n/10)
	}
	// A line that never comes: the collector stopping ends the wait.
	close(done)
	if c.wait(time.Minute, "never", done) {
		t.Error("found a line that was never added")
	}
	// A deadline ends a wait too.
	if c.wait(time.Second, "never", make(chan struct{})) {
		t.Error("found a line that was never added")
	}
}
