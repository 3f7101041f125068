package frame

import "time"

// PausePlayout asks the output stage to stop sending the bot's audio at
// once and hold its position, because the user started speaking over the
// bot and the turn-taking stage has not yet decided whether that speech is
// an interruption. The answer is not cancelled: synthesis goes on and its
// audio is queued. A PausePlayout is always followed by a ResumePlayout of
// the same turn or by an Interruption (which clears the pause).
type PausePlayout struct {
	Meta
	Reason string
}

// ResumePlayout asks the output stage to go on playing from where it was
// paused: the user's speech was a false interruption (a cough, "mm-hm").
// Paused is how long the playout was paused.
type ResumePlayout struct {
	Meta
	Paused time.Duration
}

// BargeIn reports how the turn-taking stage judged speech heard while the
// bot spoke: Outcome is BargeInInterrupted or BargeInResumed, and Paused how
// long the bot's playout was paused before the decision (zero when it was
// not paused). It is informational (metrics, client events).
type BargeIn struct {
	Meta
	Outcome string
	Paused  time.Duration
}

// Barge-in outcomes (BargeIn.Outcome).
const (
	BargeInInterrupted = "interrupted" // the answer was cut off
	BargeInResumed     = "resumed"     // a false interruption: the answer went on
)

// Endpoint reports, as the turn-taking stage releases a user turn, how long
// it waited after the user stopped speaking (Delay: the final transcript's
// wait plus any hold for an unfinished-sounding sentence) and the hold it
// chose (Hold). It is informational (metrics).
type Endpoint struct {
	Meta
	Delay time.Duration
	Hold  time.Duration
}

func (*PausePlayout) Class() Class  { return System }
func (*ResumePlayout) Class() Class { return System }
func (*BargeIn) Class() Class       { return System }
func (*Endpoint) Class() Class      { return System }

func (*PausePlayout) sealed()  {}
func (*ResumePlayout) sealed() {}
func (*BargeIn) sealed()       {}
func (*Endpoint) sealed()      {}
