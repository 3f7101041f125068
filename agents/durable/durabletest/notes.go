package durabletest

import "sync"

// Notes records the notifications of an engine's runs. Its methods are
// safe for concurrent use.
type Notes struct {
	mu  sync.Mutex
	got []string
}

// Add records a notification as "runID: msg"; use it as
// durable.Options.Notify.
func (n *Notes) Add(runID, msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, runID+": "+msg)
}

// Got returns the notifications so far, oldest first.
func (n *Notes) Got() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}
