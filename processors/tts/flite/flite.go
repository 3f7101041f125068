// Package flite is an embedded speech synthesizer: it implements
// tts.Synthesizer with CMU Flite (https://github.com/festvox/flite) through
// cgo, streaming 16 kHz mono audio while it is being synthesized.
//
// Building it needs the flite headers and libraries (Debian: flite1-dev).
//
// Three voices are built in: "slt" (female, the default), "awb" and "rms"
// (male). All are clustergen voices that speak US English at 16 kHz.
//
// # Concurrency
//
// Synthesize may be called from many goroutines at once, with the same or
// different voices, and the calls run in parallel. Flite keeps no per-call
// state in a voice once it is registered: each call builds its own
// utterances, and the streaming callback is attached to the utterance rather
// than to the shared voice. This was checked with valgrind's helgrind on
// concurrent same-voice and cross-voice synthesis of text with numbers,
// abbreviations, symbols and out-of-lexicon words: the only reports were in
// glibc's internally locked rand() (used by flite for mixed excitation noise)
// and in the test's own printf. Voice registration, which is not thread-safe
// in flite, happens exactly once per process, before the first synthesis.
package flite

/*
#cgo CFLAGS: -I/usr/include/flite
#cgo LDFLAGS: -lflite_cmu_us_slt -lflite_cmu_us_awb -lflite_cmu_us_rms -lflite_usenglish -lflite_cmulex -lflite -lm
#include <stdlib.h>
#include "speak.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/tts"
)

// DefaultVoice is the voice used when Config.Voice is empty.
const DefaultVoice = "slt"

var (
	// ErrUnknownVoice is returned for a voice name that is not built in.
	ErrUnknownVoice = errors.New("flite: unknown voice")
	// ErrInit is returned by New when flite or a voice failed to initialize.
	ErrInit = errors.New("flite: initialization failed")
	// ErrSynthesis is returned when flite fails to synthesize text.
	ErrSynthesis = errors.New("flite: synthesis failed")
	// ErrFormat is returned when a voice produces audio in a format other
	// than Format (a voice of another sample rate).
	ErrFormat = errors.New("flite: unexpected audio format")
)

// voiceIndex maps voice names to their index in speak.c's voice table.
var voiceIndex = map[string]C.int{
	"slt": C.VOICED_FLITE_SLT,
	"awb": C.VOICED_FLITE_AWB,
	"rms": C.VOICED_FLITE_RMS,
}

// format is what every built-in voice produces.
var format = frame.Mono16k

// setup runs flite_init and registers the voices once per process.
var setup = sync.OnceValue(func() error {
	if C.voiced_flite_setup() != 0 {
		return fmt.Errorf("%w: a voice did not register", ErrInit)
	}
	return nil
})

// Config configures a Synthesizer. The zero value speaks with DefaultVoice.
type Config struct {
	// Voice is the default voice: "slt" (default), "awb" or "rms".
	Voice string `json:"voice,omitempty"`
}

// Synthesizer speaks text with flite. It is safe for concurrent use and holds
// no resources of its own (the voices are process-wide), so it has no Close.
type Synthesizer struct {
	voice string
}

var _ tts.Synthesizer = (*Synthesizer)(nil)

// New initializes flite (once per process) and returns a Synthesizer whose
// default voice is cfg.Voice. It returns ErrUnknownVoice for a voice that is
// not built in.
func New(cfg Config) (*Synthesizer, error) {
	if cfg.Voice == "" {
		cfg.Voice = DefaultVoice
	}
	if _, ok := voiceIndex[cfg.Voice]; !ok {
		return nil, fmt.Errorf("%w: %q (have %s)", ErrUnknownVoice, cfg.Voice, strings.Join(Voices(), ", "))
	}
	if err := setup(); err != nil {
		return nil, err
	}
	return &Synthesizer{voice: cfg.Voice}, nil
}

// Voices returns the names of the built-in voices, sorted.
func Voices() []string {
	names := make([]string, 0, len(voiceIndex))
	for name := range voiceIndex {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Voices returns the names of the voices Synthesize accepts, sorted.
func (s *Synthesizer) Voices() []string { return Voices() }

// Format is 16 kHz mono, the format of every built-in voice.
func (s *Synthesizer) Format() frame.Format { return format }

// Synthesize speaks text with the named voice ("" for the default voice) and
// calls emit, on the calling goroutine, with each chunk of audio as flite
// makes it (about 20 ms of audio per chunk). Text is split into sentences
// that are synthesized one after another, so audio starts after the first
// sentence has been analysed rather than the whole text.
//
// pcm is only valid during the call to emit: emit must not retain or modify
// it. Synthesize returns nil after the last chunk, and at once, without
// audio, for text that is empty or only whitespace. It stops within one
// chunk and returns context.Cause(ctx) when ctx is cancelled, and returns
// emit's error, unwrapped, when emit fails. A panic in emit stops synthesis
// and is re-raised by Synthesize.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	if voice == "" {
		voice = s.voice
	}
	idx, ok := voiceIndex[voice]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownVoice, voice)
	}
	// C strings end at NUL; a NUL in text would silently drop the rest.
	text = strings.ReplaceAll(text, "\x00", " ")
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	v := C.voiced_flite_voice(idx)
	if v == nil {
		return fmt.Errorf("%w: voice %q is not registered", ErrInit, voice)
	}

	j := &job{ctx: ctx, emit: emit}
	h := cgo.NewHandle(j)
	defer h.Delete()
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))

	rc := C.voiced_flite_speak(v, ctext, C.uintptr_t(h))
	if j.panicked {
		panic(j.panicVal)
	}
	if j.err != nil {
		return j.err
	}
	if rc < 0 {
		return fmt.Errorf("%w: voice %q", ErrSynthesis, voice)
	}
	return nil
}

// job is the Go side of one Synthesize call, reached from C through a
// cgo.Handle. It is only touched by the goroutine running Synthesize (the C
// callbacks run on that goroutine's thread), so it needs no lock.
type job struct {
	ctx      context.Context
	emit     func([]int16) error
	buf      []int16 // reused for every chunk; emit must not retain it
	err      error   // why synthesis stopped early
	panicked bool
	panicVal any
}

// stopped reports whether synthesis must stop, recording why.
func (j *job) stopped() bool {
	if j.err != nil || j.panicked {
		return true
	}
	if j.ctx.Err() != nil {
		j.err = context.Cause(j.ctx)
		return true
	}
	return false
}

// chunk copies n samples out of flite's wave and passes them to emit. It
// reports whether synthesis should go on.
func (j *job) chunk(samples *C.short, n, rate, channels int) bool {
	if j.stopped() {
		return false
	}
	if rate != format.SampleRate || channels != format.Channels {
		j.err = fmt.Errorf("%w: voice made %d Hz, %d channels; want %d Hz, %d channels",
			ErrFormat, rate, channels, format.SampleRate, format.Channels)
		return false
	}
	j.buf = append(j.buf[:0], unsafe.Slice((*int16)(unsafe.Pointer(samples)), n)...)
	defer func() {
		// A panic must not unwind through flite's C frames: that would skip
		// freeing the utterance. Record it and re-raise it in Synthesize.
		if r := recover(); r != nil {
			j.panicked, j.panicVal = true, r
		}
	}()
	if err := j.emit(j.buf); err != nil {
		j.err = err
		return false
	}
	return true
}

//export voicedFliteChunk
func voicedFliteChunk(h C.uintptr_t, samples *C.short, n, rate, channels C.int) C.int {
	j := cgo.Handle(h).Value().(*job)
	if j.chunk(samples, int(n), int(rate), int(channels)) {
		return 0
	}
	return 1
}

//export voicedFliteStopped
func voicedFliteStopped(h C.uintptr_t) C.int {
	if cgo.Handle(h).Value().(*job).stopped() {
		return 1
	}
	return 0
}
