package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/agents/llm/fake"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
	"github.com/voiced-dev/voiced/processors/stt"
	sttfake "github.com/voiced-dev/voiced/processors/stt/fake"
	sttopenai "github.com/voiced-dev/voiced/processors/stt/openai"
	"github.com/voiced-dev/voiced/processors/tts"
	ttsfake "github.com/voiced-dev/voiced/processors/tts/fake"
	ttsopenai "github.com/voiced-dev/voiced/processors/tts/openai"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/session"
)

// Profile is a set of provider latencies for the turn harness.
type Profile struct {
	Name string `json:"name"`
	// STTFinal is the recognizer's time from the end of audio to the
	// final transcript, LLMFirst the model's time to first token, TTSFirst
	// the synthesizer's time to first audio.
	STTFinal time.Duration `json:"stt_final"`
	LLMFirst time.Duration `json:"llm_first"`
	TTSFirst time.Duration `json:"tts_first"`
	// TokensPerSecond paces the model after its first token (0: instant);
	// TTSRTF is the synthesizer's real-time factor after its first audio.
	TokensPerSecond float64 `json:"tokens_per_second"`
	TTSRTF          float64 `json:"tts_rtf"`
	// StopDuration is the VAD's silence before end of turn (0: default,
	// 500 ms).
	StopDuration time.Duration `json:"stop_duration"`
	Turns        int           `json:"turns"`
	// Protocol, if set, puts recognition and synthesis on the real OpenAI
	// audio protocol (stt/openai, tts/openai with MP3) against local fake
	// servers whose answers wait STTFinal and TTSFirst: what the HTTP
	// round trips, the WAV upload and the MP3 decoding cost shows in the
	// overhead.
	Protocol bool `json:"protocol,omitempty"`
}

// Instant is the profile whose providers answer at once: what is left is
// the pipeline's own latency.
func Instant(turns int) Profile { return Profile{Name: "instant", Turns: turns} }

// Cloud is a typical hosted-provider profile: streaming STT final 150 ms,
// LLM first token 350 ms then 50 tokens/s, TTS first audio 150 ms at RTF
// 0.2.
func Cloud(name string, stop time.Duration, turns int) Profile {
	return Profile{Name: name, STTFinal: 150 * time.Millisecond, LLMFirst: 350 * time.Millisecond,
		TTSFirst: 150 * time.Millisecond, TokensPerSecond: 50, TTSRTF: 0.2, StopDuration: stop, Turns: turns}
}

// CloudProtocol is Cloud spoken over the OpenAI audio protocol (see
// Profile.Protocol).
func CloudProtocol(name string, turns int) Profile {
	p := Cloud(name, 0, turns)
	p.Protocol = true
	return p
}

// protocolProviders starts the fake servers of a Protocol profile and the
// providers that talk to them; stop closes them.
func protocolProviders(prof Profile, log *slog.Logger) (stt.Recognizer, tts.Synthesizer, func(), error) {
	srv := openaitest.Start(openaitest.Config{Transcript: Transcript, TranscribeDelay: prof.STTFinal, SpeechDelay: prof.TTSFirst},
		func(err error) { log.Error("bench: fake OpenAI server", "err", err) })
	rec, err := sttopenai.New(sttopenai.Config{BaseURL: srv.URL})
	if err == nil {
		var syn tts.Synthesizer
		if syn, err = ttsopenai.New(ttsopenai.Config{BaseURL: srv.URL, Format: "mp3"}); err == nil {
			return rec, syn, srv.Close, nil
		}
	}
	srv.Close()
	return nil, nil, nil, err
}

// Transcript and Reply are what the fakes hear and say in the harness.
const (
	Transcript = "what is the weather like today"
	Reply      = "Sure. It is sunny and warm today, with a light breeze from the west."
)

// TurnResult is one measured turn. The segments add up to VoiceToVoice:
// Endpointing (last voiced audio in → UserStoppedSpeaking), STT (→ final
// transcript), LLM (→ first sentence to TTS), TTS (→ first output frame),
// Transport (→ first audio written by the playout).
type TurnResult struct {
	Profile      string        `json:"profile"`
	VoiceToVoice time.Duration `json:"voice_to_voice"`
	Endpointing  time.Duration `json:"endpointing"`
	STT          time.Duration `json:"stt"`
	LLM          time.Duration `json:"llm"`
	TTS          time.Duration `json:"tts"`
	Transport    time.Duration `json:"transport"`
	// EndpointAudio is the endpointing the audio itself imposes: from the
	// last voiced frame's arrival to the arrival of the frame on which the
	// VAD decided; Providers the configured provider time on the path
	// (STT final + model time to the first sentence + TTS first audio).
	EndpointAudio time.Duration `json:"endpoint_audio"`
	Providers     time.Duration `json:"providers"`
	// Overhead = VoiceToVoice − EndpointAudio − Providers: the pipeline's
	// own share.
	Overhead time.Duration `json:"overhead"`
	// StopToAudio is from UserStoppedSpeaking to the first audio written.
	StopToAudio time.Duration `json:"stop_to_audio"`
}

// TurnRun is the result of one profile.
type TurnRun struct {
	Profile Profile      `json:"profile"`
	Turns   []TurnResult `json:"turns"`
	// Missed counts turns with no answer within 5 s; Errors the frame.Error
	// frames seen.
	Missed int `json:"missed"`
	Errors int `json:"errors"`
}

// turnRec collects one turn's timestamps; mu guards it.
type turnRec struct {
	t0, stop, final, sentence, ttsOut, out time.Time
	trig                                   time.Duration // PTS of the frame the stop was decided on
}

type turnProbe struct {
	mu      sync.Mutex
	rec     *turnRec
	lastPTS time.Duration // last input frame the VAD (stage 1) passed
	errs    int
	outc    chan struct{} // signalled at the first audio of a turn
}

// OnHop implements pipeline.Observer.
func (p *turnProbe) OnHop(h pipeline.Hop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rec
	switch f := h.Frame.(type) {
	case *frame.InputAudio:
		if h.From == 1 {
			p.lastPTS = f.PTS
		}
		return
	case *frame.Error:
		if h.First {
			p.errs++
		}
		return
	}
	if r == nil || !h.First {
		return
	}
	switch f := h.Frame.(type) {
	case *frame.UserStoppedSpeaking:
		if r.stop.IsZero() {
			r.stop, r.trig = h.At, p.lastPTS
		}
	case *frame.Transcript:
		if f.Final && !r.stop.IsZero() && r.final.IsZero() {
			r.final = h.At
		}
	case *frame.TTSText:
		if !r.final.IsZero() && r.sentence.IsZero() {
			r.sentence = h.At
		}
	case *frame.OutputAudio:
		if !r.sentence.IsZero() && r.ttsOut.IsZero() {
			r.ttsOut = h.At
		}
	}
}

// WriteAudio implements transport.AudioWriter: it stamps a turn's first
// audio.
func (p *turnProbe) WriteAudio(pcm []int16) error {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.rec; r != nil && !r.ttsOut.IsZero() && r.out.IsZero() {
		r.out = now
		select {
		case p.outc <- struct{}{}:
		default:
		}
	}
	return nil
}

// RunTurns holds a conversation of prof.Turns turns through the real
// session pipeline (transport input, VAD state machine, STT, agent, TTS,
// playout) with fake providers and a scripted VAD model, in real time, and
// measures each turn. Each turn is 800 ms of tone, then silence until 300 ms
// after the answer starts; the next turn barges in on the rest of it. (Over
// the bot, the turn-taking stage does not count the first EchoTail of a
// pause toward MinDuration: 800 ms qualify with room to spare, where 640 ms
// made 340 ms of the 400 needed, or 400, by how the chunks fell.)
func RunTurns(ctx context.Context, prof Profile, log *slog.Logger) (TurnRun, error) {
	run := TurnRun{Profile: prof}
	model := fake.New(fake.Config{Reply: Reply, FirstToken: prof.LLMFirst, TokensPerSecond: prof.TokensPerSecond, Expect: Transcript})
	var syn tts.Synthesizer = ttsfake.New(ttsfake.Config{FirstAudio: prof.TTSFirst, RTF: prof.TTSRTF})
	var rec stt.Recognizer = sttfake.New(sttfake.Config{Transcript: Transcript, Final: prof.STTFinal})
	if prof.Protocol {
		var stop func()
		var err error
		if rec, syn, stop, err = protocolProviders(prof, log); err != nil {
			return run, fmt.Errorf("bench: turns %s: %w", prof.Name, err)
		}
		defer stop()
	}
	providers := prof.STTFinal + prof.TTSFirst + firstSentence(prof)

	probe := &turnProbe{outc: make(chan struct{}, 1)}
	b := &session.Builder{VAD: levelModel{}, STT: rec, TTS: syn, Model: model, Logger: log,
		Config: session.Config{VAD: vad.Config{StopDuration: prof.StopDuration}}}
	speech, silence := tone(320), make([]int16, 320)
	conn, err := newConn("turns-"+prof.Name, time.Now(), probe, probe, func(ctx context.Context, f *feeder) error {
		for range 25 { // 500 ms of silence to settle
			if _, err := f.push(ctx, silence); err != nil {
				return err
			}
		}
		for range prof.Turns {
			var t0 time.Time
			for range 40 {
				t, err := f.push(ctx, speech)
				if err != nil {
					return err
				}
				t0 = t
			}
			probe.mu.Lock()
			r := &turnRec{t0: t0}
			probe.rec = r
			probe.mu.Unlock()
			select {
			case <-probe.outc: // stale signal from an earlier turn
			default:
			}
			answered := false
			for i := 0; i < 250 && !answered; i++ { // up to 5 s
				if _, err := f.push(ctx, silence); err != nil {
					return err
				}
				select {
				case <-probe.outc:
					answered = true
				default:
				}
			}
			for range 15 {
				if _, err := f.push(ctx, silence); err != nil {
					return err
				}
			}
			probe.mu.Lock()
			probe.rec = nil
			probe.mu.Unlock()
			if !answered || r.out.IsZero() {
				run.Missed++
				continue
			}
			trig := f.pushedAt(r.trig)
			tr := TurnResult{
				Profile:      prof.Name,
				VoiceToVoice: r.out.Sub(r.t0),
				Endpointing:  r.stop.Sub(r.t0),
				STT:          r.final.Sub(r.stop),
				LLM:          r.sentence.Sub(r.final),
				TTS:          r.ttsOut.Sub(r.sentence),
				Transport:    r.out.Sub(r.ttsOut),
				Providers:    providers,
				StopToAudio:  r.out.Sub(r.stop),
			}
			if !trig.IsZero() {
				tr.EndpointAudio = trig.Sub(r.t0)
			}
			tr.Overhead = tr.VoiceToVoice - tr.EndpointAudio - tr.Providers
			run.Turns = append(run.Turns, tr)
		}
		return io.EOF // done: stop the session
	})
	if err != nil {
		return run, err
	}
	err = b.Run(ctx, conn)
	probe.mu.Lock()
	run.Errors = probe.errs
	probe.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		return run, fmt.Errorf("bench: turns %s: %w", prof.Name, err)
	}
	if st := model.Stats(); st.Calls == 0 {
		return run, fmt.Errorf("bench: turns %s: the model was never asked", prof.Name)
	}
	return run, ctx.Err()
}

// firstSentence is the fake model's time to the end of Reply's first
// sentence, as the TTS stage's sentence splitter sees the streamed tokens.
func firstSentence(prof Profile) time.Duration {
	var s tts.Sentences
	for i, tok := range fake.Tokens(Reply) {
		if len(s.Add(tok)) > 0 {
			d := prof.LLMFirst
			if i > 0 && prof.TokensPerSecond > 0 {
				d += time.Duration(float64(i) / prof.TokensPerSecond * float64(time.Second))
			}
			return d
		}
	}
	return prof.LLMFirst
}
