package transport

import (
	"time"
)

// Pacer holds a client's audio input to real time. An edge calls Add for
// each piece of audio it receives, before pushing it, and waits the
// returned duration: a client may run up to Burst ahead of real time
// (network jitter, a client's own buffering), beyond which the edge's
// reader waits, so TCP pushes back on the sender and the pipeline never
// processes faster than real time. A sender that keeps needing to be held
// back (MaxAhead of waiting in all) is abusive and is refused with a
// ProtocolError of code too_fast. The zero value paces nothing and refuses
// nothing.
//
// A Pacer belongs to one session's reader goroutine; it is not safe for
// concurrent use.
type Pacer struct {
	Burst    time.Duration // allowed lead over real time
	MaxAhead time.Duration // total waiting before the sender is refused; 0: never

	start  time.Time     // real time of the first audio
	media  time.Duration // audio received
	waited time.Duration // total wait returned
}

// Add records d of audio received at now and returns how long the reader
// should wait before taking more, or an error once the sender has needed
// more than MaxAhead of waiting.
func (p *Pacer) Add(now time.Time, d time.Duration) (time.Duration, error) {
	if p.Burst <= 0 {
		return 0, nil
	}
	if p.start.IsZero() {
		p.start = now
	}
	p.media += d
	// Real time the audio received so far may fill: what has elapsed since
	// the first audio, plus the burst.
	lead := p.media - now.Sub(p.start) - p.Burst
	if lead <= 0 {
		return 0, nil
	}
	p.waited += lead
	if p.MaxAhead > 0 && p.waited > p.MaxAhead {
		return 0, BadInput("too_fast", "audio is arriving faster than real time (%v ahead after %v)", (p.media - now.Sub(p.start)).Round(time.Millisecond), now.Sub(p.start).Round(time.Millisecond))
	}
	return lead, nil
}
