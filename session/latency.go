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
//
// Besides the latencies, each report carries the turn-taking stage's
// endpointing delay and hold for the turn, whether the turn began by
// interrupting the bot's answer (and how long that answer was paused
// first), and the false interruptions (pauses that resumed) since the
// previous report.
type Latency struct {
	report func(frame.TurnMetrics)
	last   int // index of the last turn reported (under the tracker's lock)

	resumes int           // false interruptions since the last report
	resumed time.Duration // the time paused by them
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
	if e.Kind == turns.Judged && e.Outcome == frame.BargeInResumed {
		l.resumes++
		l.resumed += e.Paused
		return
	}
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

		EndpointDelay: c.EndpointDelay,
		Hold:          c.Hold,
		BargeIn:       c.BargeIn,
		Pause:         c.Pause,
		Resumes:       l.resumes,
		ResumedPause:  l.resumed,
	}
	l.resumes, l.resumed = 0, 0
	m.VoiceToVoice = m.AudioOut
	l.report(m)
}
