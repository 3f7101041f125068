package session

import (
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Latency is an observer that measures each turn's latency breakdown, from
// the moment the user stopped speaking to the first audio written to the
// transport, and reports it once per answered turn.
type Latency struct {
	report func(frame.TurnMetrics)

	mu      sync.Mutex
	stopped time.Time // UserStoppedSpeaking.At of the turn being measured
	typed   bool
	m       frame.TurnMetrics
	open    bool
}

// NewLatency returns a latency observer calling report from the observing
// goroutine; report must not block.
func NewLatency(report func(frame.TurnMetrics)) *Latency {
	return &Latency{report: report}
}

// OnHop implements pipeline.Observer.
func (l *Latency) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	l.mu.Lock()
	var done *frame.TurnMetrics
	switch f := h.Frame.(type) {
	case *frame.UserStartedSpeaking:
		l.open = false
	case *frame.UserStoppedSpeaking:
		l.stopped, l.open, l.typed = f.At, true, false
		l.m = frame.TurnMetrics{Endpointing: h.At.Sub(f.At)}
	case *frame.Transcript:
		if f.Final && f.Typed {
			// Typed input: measure from its arrival.
			l.stopped, l.open, l.typed = h.At, true, true
			l.m = frame.TurnMetrics{}
		}
		if f.Final && l.open && l.m.STTFinal == 0 {
			l.m.STTFinal = h.At.Sub(l.stopped)
		}
	case *frame.LLMText:
		if l.open && l.m.LLMFirst == 0 {
			l.m.LLMFirst = h.At.Sub(l.stopped)
			l.m.Turn = f.Turn
		}
	case *frame.TTSText:
		if l.open && l.m.SentenceTTS == 0 {
			l.m.SentenceTTS = h.At.Sub(l.stopped)
		}
	case *frame.OutputAudio:
		if l.open && l.m.TTSFirst == 0 {
			l.m.TTSFirst = h.At.Sub(l.stopped)
		}
	case *frame.BotStartedSpeaking:
		if l.open && l.m.LLMFirst != 0 {
			l.m.AudioOut = h.At.Sub(l.stopped)
			l.m.VoiceToVoice = l.m.AudioOut
			m := l.m
			done = &m
			l.open = false
		}
	}
	l.mu.Unlock()
	if done != nil && l.report != nil {
		l.report(*done)
	}
}
