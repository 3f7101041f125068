// Package turns follows a conversation's user turns from the pipeline's
// hops, once, for everything that measures them: the latency breakdown
// (session.Latency) and the session trace (telemetry) are listeners of one
// Tracker instead of two state machines of their own.
//
// A user turn opens when the user stops speaking (the detector's
// UserStoppedSpeaking; its start is UserStoppedSpeaking.At, the last voiced
// chunk) or types a message (a final typed Transcript), and closes when the
// bot has finished speaking its answer, when the answer is interrupted, when
// a new user turn supersedes it before any answer, or when the session ends.
// An interruption before any answer (the one a typed message causes, say)
// moves the open turn to the new pipeline turn, where its answer will be.
// Between, the Tracker reports its milestones: the final transcript, the
// model's answer (start, first token, end), each synthesized sentence (its
// text, first audio, last audio) and the bot's playout. From the
// turn-taking stage it also takes the endpointing delay it used
// (frame.Endpoint) and its judgments of speech over the bot
// (frame.BargeIn), reported as Judged events; an interruption is also
// recorded on the user turn it begins (Turn.BargeIn, Turn.Pause).
package turns

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Kind is what happened to a turn.
type Kind uint8

// Milestones of a user turn, in the order they usually come.
const (
	Opened      Kind = iota + 1 // a user turn opened (Turn.Start, Turn.Detected set)
	Transcribed                 // its final transcript
	LLMStarted                  // the model started answering
	FirstToken                  // the answer's first text
	LLMEnded                    // the model finished answering
	Sentence                    // a sentence went to synthesis (Text)
	FirstAudio                  // that sentence's first audio
	SentenceEnd                 // that sentence's last audio (Cut: it was not finished)
	PlayStarted                 // the bot started speaking
	PlayStopped                 // the bot stopped speaking (Interrupted)
	Underrun                    // playout ran dry before the answer was done
	Closed                      // the turn ended (EndedBy, Reason)
	Endpointed                  // the turn stage released the turn (Turn.EndpointDelay, Turn.Hold)
	Judged                      // speech over the bot was judged (Outcome, Paused); Turn is the open turn (or an empty one)
)

// How a turn closed (Event.EndedBy).
const (
	EndedAnswered    = "answered"    // the bot finished speaking its answer
	EndedInterrupted = "interrupted" // the user barged in during the answer
	EndedSuperseded  = "superseded"  // a new user turn began before any answer
	EndedSessionEnd  = "session_end" // the session ended first
)

// Turn is what the Tracker knows of one user turn. Times are zero until
// the milestone is reached; the first occurrence counts.
type Turn struct {
	Index int    // 1-based count of the session's user turns
	N     uint32 // pipeline turn of the frames of its answer
	Typed bool   // typed text, not speech

	Start    time.Time // the user stopped speaking (or typed)
	Detected time.Time // the stop was detected (= Start for typed text)
	STTFinal time.Time // final transcript
	LLMFirst time.Time // the answer's first text
	Sentence time.Time // first sentence sent to synthesis
	TTSFirst time.Time // first synthesized audio
	AudioOut time.Time // the bot started speaking

	// Turn taking: the turn stage's wait after the stop and its hold
	// (frame.Endpoint); whether the turn began by interrupting the bot's
	// answer, after it was paused for Pause (frame.BargeIn).
	EndpointDelay time.Duration
	Hold          time.Duration
	BargeIn       string
	Pause         time.Duration

	TranscriptLen int  // bytes of the final transcript
	LLMChars      int  // bytes of the answer's text so far
	Sentences     int  // sentences sent to synthesis
	LLMStarted    bool // the model started answering
	LLMDone       bool // the model finished answering

	llmOpen    bool
	ttsOpen    bool // a sentence is being synthesized
	ttsAudio   bool // it has had audio
	playOpen   bool
	firstToken bool
}

// Event is one milestone of a turn.
type Event struct {
	Kind Kind
	At   time.Time
	// Turn is the turn's state as of this event. Listeners may read it
	// during the call only.
	Turn *Turn
	// Frame is the frame that caused the event (nil for SentenceEnd with
	// Cut, and for Closed at the end of the session).
	Frame frame.Frame

	Text        string        // Sentence: the sentence
	Cut         bool          // SentenceEnd: cut off before its last audio
	Interrupted bool          // PlayStopped
	EndedBy     string        // Closed
	Reason      string        // Closed by an interruption: its reason
	Outcome     string        // Judged: frame.BargeInInterrupted or frame.BargeInResumed
	Paused      time.Duration // Judged: how long the bot was paused
}

// Listener receives a Tracker's events, in order, under the Tracker's lock:
// it must be fast, must not block and must not call back into the Tracker.
type Listener func(Event)

// Tracker is an observer (add it to pipeline.Options.Observers) that follows
// the session's user turns and reports their milestones to its listeners.
// It looks only at a frame's first hop (the one that creates it); input
// audio and all but a sentence's first and last output audio are ignored
// without locking. OnHop and End are safe for concurrent use.
type Tracker struct {
	listeners []Listener
	wantAudio atomic.Bool // a sentence is waiting for its first audio

	mu    sync.Mutex
	ended bool
	last  time.Time // latest hop seen
	turns int
	cur   *Turn
	barge *frame.BargeIn // an interruption judged, for the user turn it begins
}

// New returns a tracker reporting to listeners.
func New(listeners ...Listener) *Tracker {
	return &Tracker{listeners: listeners}
}

// Listen adds a listener. It must be called before the pipeline runs.
func (t *Tracker) Listen(l Listener) { t.listeners = append(t.listeners, l) }

// Last returns the time of the latest hop seen.
func (t *Tracker) Last() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// OnHop implements pipeline.Observer.
func (t *Tracker) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	switch f := h.Frame.(type) {
	case *frame.Interruption, *frame.UserStoppedSpeaking, *frame.LLMResponseStart, *frame.LLMText,
		*frame.LLMResponseEnd, *frame.TTSText, *frame.BotStartedSpeaking, *frame.BotStoppedSpeaking,
		*frame.BargeIn, *frame.Endpoint:
	default:
		return // input audio, VAD scores, metrics, ...: not part of a turn
	case *frame.OutputAudio:
		if f.Spoken == "" && !t.wantAudio.Load() {
			return
		}
	case *frame.Transcript:
		if !f.Final || f.Deferred {
			return // a deferred message opens no turn: nothing answers it
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return
	}
	if h.At.After(t.last) {
		t.last = h.At
	}
	c := t.cur
	switch f := h.Frame.(type) {
	case *frame.BargeIn:
		if f.Outcome == frame.BargeInInterrupted {
			t.barge = f // for the user turn that cut the answer off
		}
		if c == nil {
			// Reported with no turn: listeners that count judgments
			// get every one.
			t.emit(Event{Kind: Judged, At: h.At, Turn: &Turn{}, Frame: h.Frame, Outcome: f.Outcome, Paused: f.Paused})
			return
		}
		t.emit(Event{Kind: Judged, At: h.At, Turn: c, Frame: h.Frame, Outcome: f.Outcome, Paused: f.Paused})

	case *frame.Endpoint:
		if c == nil || c.Typed {
			return
		}
		c.EndpointDelay, c.Hold = f.Delay, f.Hold
		t.emit(Event{Kind: Endpointed, At: h.At, Turn: c, Frame: h.Frame})

	case *frame.Interruption:
		if c == nil {
			return
		}
		if c.LLMStarted {
			t.close(h.At, h.Frame, EndedInterrupted, f.Reason)
			return
		}
		// Nothing was answered yet: the answer, if any, comes in the
		// new turn (a typed message interrupts after it is made). A new
		// user turn will supersede this one.
		c.N = f.Turn

	case *frame.UserStoppedSpeaking:
		start := f.At
		if start.IsZero() || start.After(h.At) {
			start = h.At
		}
		t.open(start, h.At, f.Turn, false, h.Frame)

	case *frame.Transcript:
		if f.Typed || c == nil {
			c = t.open(h.At, h.At, f.Turn, f.Typed, h.Frame)
		}
		c.N = f.Turn
		c.TranscriptLen = len(f.Text)
		if c.STTFinal.IsZero() {
			c.STTFinal = h.At
		}
		t.emit(Event{Kind: Transcribed, At: h.At, Turn: c, Frame: h.Frame})

	case *frame.LLMResponseStart:
		if c == nil || f.Turn != c.N || c.llmOpen {
			return
		}
		c.llmOpen, c.LLMStarted, c.LLMDone, c.firstToken, c.LLMChars = true, true, false, false, 0
		t.emit(Event{Kind: LLMStarted, At: h.At, Turn: c, Frame: h.Frame})

	case *frame.LLMText:
		if c == nil || f.Turn != c.N || !c.llmOpen {
			return
		}
		c.LLMChars += len(f.Text)
		if !c.firstToken {
			c.firstToken = true
			if c.LLMFirst.IsZero() {
				c.LLMFirst = h.At
			}
			t.emit(Event{Kind: FirstToken, At: h.At, Turn: c, Frame: h.Frame})
		}

	case *frame.LLMResponseEnd:
		if c == nil || f.Turn != c.N || !c.llmOpen {
			return
		}
		c.llmOpen, c.LLMDone = false, true
		t.emit(Event{Kind: LLMEnded, At: h.At, Turn: c, Frame: h.Frame})

	case *frame.TTSText:
		if c == nil || f.Turn != c.N {
			return
		}
		t.endSentence(c, h.At, nil, true) // synthesis of the last one failed
		c.ttsOpen, c.ttsAudio = true, false
		c.Sentences++
		if c.Sentence.IsZero() {
			c.Sentence = h.At
		}
		t.wantAudio.Store(true)
		t.emit(Event{Kind: Sentence, At: h.At, Turn: c, Frame: h.Frame, Text: f.Text})

	case *frame.OutputAudio:
		if c == nil || f.Turn != c.N || !c.ttsOpen {
			return
		}
		if !c.ttsAudio {
			c.ttsAudio = true
			t.wantAudio.Store(false)
			if c.TTSFirst.IsZero() {
				c.TTSFirst = h.At
			}
			t.emit(Event{Kind: FirstAudio, At: h.At, Turn: c, Frame: h.Frame})
		}
		if f.Spoken != "" {
			t.endSentence(c, h.At, h.Frame, false)
		}

	case *frame.BotStartedSpeaking:
		if c == nil || f.Turn != c.N || c.playOpen {
			return
		}
		c.playOpen = true
		if c.AudioOut.IsZero() {
			c.AudioOut = h.At
		}
		t.emit(Event{Kind: PlayStarted, At: h.At, Turn: c, Frame: h.Frame})

	case *frame.BotStoppedSpeaking:
		if c == nil || f.Turn != c.N {
			return
		}
		if c.playOpen {
			c.playOpen = false
			t.emit(Event{Kind: PlayStopped, At: h.At, Turn: c, Frame: h.Frame, Interrupted: f.Interrupted})
		}
		if c.LLMDone && !c.ttsOpen && !f.Interrupted {
			t.close(h.At, h.Frame, EndedAnswered, "")
		} else if !f.Interrupted {
			t.emit(Event{Kind: Underrun, At: h.At, Turn: c, Frame: h.Frame})
		}
	}
}

// End closes the open turn, if any, as EndedSessionEnd, at the later of now
// and the latest hop seen, and returns that time. Hops after End are
// ignored. Idempotent (later calls return the zero time).
func (t *Tracker) End() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return time.Time{}
	}
	t.ended = true
	now := time.Now()
	if t.last.After(now) {
		now = t.last
	}
	t.close(now, nil, EndedSessionEnd, "")
	return now
}

// Turns returns how many user turns were opened.
func (t *Tracker) Turns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.turns
}

func (t *Tracker) emit(e Event) {
	for _, l := range t.listeners {
		l(e)
	}
}

// open closes the open turn, if any, and opens a new one. t.mu held.
func (t *Tracker) open(start, detected time.Time, n uint32, typed bool, f frame.Frame) *Turn {
	if t.cur != nil {
		t.close(start, f, EndedSuperseded, "")
	}
	t.turns++
	t.cur = &Turn{Index: t.turns, N: n, Typed: typed, Start: start, Detected: detected}
	if b := t.barge; b != nil && !typed {
		t.cur.BargeIn, t.cur.Pause = b.Outcome, b.Paused
	}
	t.barge = nil
	t.emit(Event{Kind: Opened, At: start, Turn: t.cur, Frame: f})
	return t.cur
}

// endSentence ends the sentence being synthesized, if any. t.mu held.
func (t *Tracker) endSentence(c *Turn, at time.Time, f frame.Frame, cut bool) {
	if !c.ttsOpen {
		return
	}
	c.ttsOpen = false
	t.wantAudio.Store(false)
	t.emit(Event{Kind: SentenceEnd, At: at, Turn: c, Frame: f, Cut: cut})
}

// close ends the open turn. t.mu held.
func (t *Tracker) close(at time.Time, f frame.Frame, by, reason string) {
	c := t.cur
	if c == nil {
		return
	}
	t.cur = nil
	t.endSentence(c, at, nil, true)
	t.emit(Event{Kind: Closed, At: at, Turn: c, Frame: f, EndedBy: by, Reason: reason})
}
