package session

import (
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline/turns"
)

// Latency measures each turn's latency breakdown, from the moment the user
// stopped speaking (or typed) to the moment the bot started speaking its
// answer, and reports it once per answered turn. It listens to the
// session's turns.Tracker, which the session trace shares: the turns are
// followed once.
type Latency struct {
	report func(frame.TurnMetrics)
	last   int // index of the last turn reported (under the tracker's lock)
}

// NewLatency returns a latency measurement listening to tr. report is
// called on the observing goroutine, under the tracker's lock: it must not
// block, nor call into tr.
func NewLatency(tr *turns.Tracker, report func(frame.TurnMetrics)) *Latency {
	l := &Latency{report: report}
	tr.Listen(l.onTurn)
	return l
}

func (l *Latency) onTurn(e turns.Event) {
	// The bot's first audio of an answered turn (an answer was
	// generated: LLMFirst) ends the measurement.
	c := e.Turn
	if e.Kind != turns.PlayStarted || c.LLMFirst.IsZero() || c.Index == l.last || l.report == nil {
		return
	}
	l.last = c.Index
	since := func(at time.Time) time.Duration {
		if at.IsZero() {
			return 0
		}
		return at.Sub(c.Start)
	}
	m := frame.TurnMetrics{
		Turn:        c.N,
		Endpointing: c.Detected.Sub(c.Start),
		STTFinal:    since(c.STTFinal),
		LLMFirst:    since(c.LLMFirst),
		SentenceTTS: since(c.Sentence),
		TTSFirst:    since(c.TTSFirst),
		AudioOut:    since(c.AudioOut),
	}
	m.VoiceToVoice = m.AudioOut
	l.report(m)
}
