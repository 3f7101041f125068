package pipeline

import (
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

// State is the conversation state that several stages need, published once
// by the runtime and read by any stage, from any goroutine, without waiting
// for relayed frames. The runtime publishes it as the events that change it
// are created, before they travel anywhere:
//
//   - the user is speaking from the moment a stage creates a
//     frame.UserStartedSpeaking (the speech detector, processors/vad) until
//     it creates a frame.UserStoppedSpeaking;
//   - the bot is speaking from the moment the output stage creates a
//     frame.BotStartedSpeaking (just before it writes the first sample of a
//     reply) until it creates a frame.BotStoppedSpeaking (its playout ran dry
//     or was cleared);
//   - the current turn is Runtime.Turn, advanced by Runtime.Interrupt.
//
// So each fact has one owner, the stage that makes its event, and a stage
// busy with a long provider call cannot hold it up: readers see a change
// within the emitting call, however many stages lie between.
// The zero value is a silent conversation. Methods are safe for concurrent
// use.
type State struct {
	user atomic.Int64 // unix nanoseconds since the user started speaking; 0: silent
	bot  atomic.Int64 // unix nanoseconds since the bot started speaking; 0: silent
}

// UserSpeaking reports whether the user is speaking.
func (s *State) UserSpeaking() bool { return s.user.Load() != 0 }

// BotSpeaking reports whether the bot is speaking (its audio is being
// played).
func (s *State) BotSpeaking() bool { return s.bot.Load() != 0 }

// BotSpeakingSince returns when the bot started speaking, and false when
// it is silent.
func (s *State) BotSpeakingSince() (time.Time, bool) {
	if n := s.bot.Load(); n != 0 {
		return time.Unix(0, n), true
	}
	return time.Time{}, false
}

// UserSpeakingSince returns when the user started speaking (as detected),
// and false when they are silent.
func (s *State) UserSpeakingSince() (time.Time, bool) {
	if n := s.user.Load(); n != 0 {
		return time.Unix(0, n), true
	}
	return time.Time{}, false
}

// publish updates the state for a frame just created (stamped).
func (s *State) publish(f frame.Frame) {
	if f.Class() != frame.System {
		return
	}
	switch f.(type) {
	case *frame.UserStartedSpeaking:
		s.user.Store(max(time.Now().UnixNano(), 1))
	case *frame.UserStoppedSpeaking:
		s.user.Store(0)
	case *frame.BotStartedSpeaking:
		s.bot.Store(max(time.Now().UnixNano(), 1))
	case *frame.BotStoppedSpeaking:
		s.bot.Store(0)
	}
}
