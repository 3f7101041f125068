package frame

import "time"

// UserSpeaking reports, while the user speaks, how much voiced audio the
// speech detector has heard since the user's speech started (StartDuration
// included). The detector emits it on each voiced chunk after
// UserStartedSpeaking; the turn-taking stage uses it to tell real speech
// over the bot from a short noise.
type UserSpeaking struct {
	Meta
	Voiced time.Duration
}

// UserBackchannel records user speech heard while the bot spoke that did not
// qualify as an interruption (a cough, "mm-hm", "yeah"): the bot kept
// talking and Text, its transcript (possibly empty), is not answered.
type UserBackchannel struct {
	Meta
	Text string
}

func (*UserSpeaking) Class() Class    { return System }
func (*UserBackchannel) Class() Class { return System }

func (*UserSpeaking) sealed()    {}
func (*UserBackchannel) sealed() {}
