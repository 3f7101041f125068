// Package frame defines the values that flow through a voiced pipeline.
//
// A frame is a concrete Go type behind the sealed Frame interface; a type
// switch handles them. Every frame embeds Meta, which the pipeline fills with
// an ID, the turn (generation) that produced the frame and a media timestamp.
//
// The set of frames is closed: Frame has an unexported method that each frame
// type of this package declares itself (embedding Meta is not enough), so
// only this package can add a frame type. A new kind of frame (telephony
// events such as DTMF, say) is added here, in its own file, with its class;
// processors, transports and observers can then rely on handling every frame
// a pipeline may carry.
//
// Frames come in three classes that decide how the pipeline schedules them
// relative to an interruption (barge-in):
//
//   - System frames bypass queued data and survive interruptions: input audio,
//     VAD events, interruptions, errors, metrics.
//   - Data frames are ordered and are discarded when their turn is interrupted:
//     output audio, transcripts, LLM text, TTS text.
//   - Control frames are ordered and are discarded on interruption unless they
//     are Uninterruptible (End, for example).
//
// Ownership: a receiver must not modify a frame it did not create, and must
// copy audio samples to keep them after its Process call returns.
package frame

import "time"

// Class says how a frame is scheduled relative to interruptions.
type Class uint8

const (
	System  Class = iota + 1 // bypasses data queues, survives interruptions
	Data                     // ordered, discarded on interruption
	Control                  // ordered, discarded unless Uninterruptible
)

func (c Class) String() string {
	switch c {
	case System:
		return "system"
	case Data:
		return "data"
	case Control:
		return "control"
	}
	return "unknown"
}

// Meta is embedded in every frame. The pipeline fills ID (unique within a
// session, never zero once emitted) and Turn (the generation of the work that
// produced the frame; frames of an older turn than the pipeline's current one
// are stale). PTS is media time since the session started, where known.
type Meta struct {
	ID   uint64
	Turn uint32
	PTS  time.Duration
}

// Header returns the frame's metadata for the pipeline to stamp.
func (m *Meta) Header() *Meta { return m }

// Frame is implemented only by the types in this package (see the package
// doc): every frame type declares the unexported sealed method.
type Frame interface {
	Header() *Meta
	Class() Class
	sealed()
}

// Uninterruptible is implemented by control frames that must survive an
// interruption (they are never dropped as stale).
type Uninterruptible interface {
	Frame
	Uninterruptible()
}

// Survives reports whether f is kept when its turn is interrupted.
func Survives(f Frame) bool {
	if f.Class() == System {
		return true
	}
	_, ok := f.(Uninterruptible)
	return ok
}

// Format describes PCM16 audio.
type Format struct {
	SampleRate int // Hz
	Channels   int
}

// Mono16k is the pipeline's internal format.
var Mono16k = Format{SampleRate: 16000, Channels: 1}

// Duration returns how long n interleaved samples last in this format.
func (f Format) Duration(n int) time.Duration {
	if f.SampleRate <= 0 || f.Channels <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second / time.Duration(f.SampleRate*f.Channels)
}

// Samples returns how many interleaved samples last d in this format.
func (f Format) Samples(d time.Duration) int {
	return int(d * time.Duration(f.SampleRate*f.Channels) / time.Second)
}

// InputAudio is PCM16 audio heard from the user (system class: it survives
// interruptions). Receivers must not modify Samples, and must copy them to
// keep them after Process returns.
type InputAudio struct {
	Meta
	Format  Format
	Samples []int16
}

// OutputAudio is PCM16 audio to be played to the user (data class). Text, when
// set, is the part of the bot's answer this chunk ends (the playout stage uses
// it to report what was actually spoken). Receivers must not modify Samples.
type OutputAudio struct {
	Meta
	Format  Format
	Samples []int16
	// Spoken is non-empty on the last chunk of a synthesized sentence: the
	// sentence's text, reported once the chunk has been played.
	Spoken string
	// Words are timings of the sentence's words that the synthesizer
	// reported since the previous chunk (ElevenLabs' alignment, Cartesia's
	// word timestamps); nil when it reports none. Their times are measured
	// from the start of the sentence's audio (its TTSText), so the playout
	// can tell which words were played when the sentence is cut off.
	Words []Word
}

// Word is when one word is heard: from Start to End, measured from the
// start of its audio (a synthesized sentence's, or a user's utterance's).
type Word struct {
	Text       string
	Start, End time.Duration
}

func (*InputAudio) Class() Class  { return System }
func (*OutputAudio) Class() Class { return Data }

func (*InputAudio) sealed()  {}
func (*OutputAudio) sealed() {}
