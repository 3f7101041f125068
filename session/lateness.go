package session

import (
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// lateness is the observer that measures the session's input lateness
// for the server's load meter: how long each input audio frame waits at
// the turn detector (from entering its lane to leaving it), the stage
// that falls behind first when the machine is short of CPU.
type lateness struct {
	stage   int // the detector's index
	observe func(time.Duration)

	mu      sync.Mutex
	arrived map[uint64]time.Time // by frame ID
}

func (l *lateness) OnHop(h pipeline.Hop) {
	if _, ok := h.Frame.(*frame.InputAudio); !ok || h.Dir != pipeline.Downstream {
		return
	}
	switch {
	case h.To == l.stage:
		l.mu.Lock()
		l.arrived[h.Frame.Header().ID] = h.At
		l.mu.Unlock()
	case h.From == l.stage:
		id := h.Frame.Header().ID
		l.mu.Lock()
		at, ok := l.arrived[id]
		delete(l.arrived, id)
		l.mu.Unlock()
		if ok {
			l.observe(h.At.Sub(at))
		}
	}
}
