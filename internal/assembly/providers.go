package assembly

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/orchestration"
	"github.com/voiced-dev/voiced/processors/stt"
	sttdeepgram "github.com/voiced-dev/voiced/processors/stt/deepgram"
	sttopenai "github.com/voiced-dev/voiced/processors/stt/openai"
	"github.com/voiced-dev/voiced/processors/stt/sphinx"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/tts/cartesia"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	ttsopenai "github.com/voiced-dev/voiced/processors/tts/openai"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
)

// ErrUnknownProvider is returned, wrapped, for a provider name that no
// table holds.
var ErrUnknownProvider = errors.New("assembly: unknown provider")

// The speech providers, by the name the file's provider key gives them.
// Each row makes a provider from its section of the configuration; a
// provider that holds resources implements io.Closer, and Assembly.Close
// closes it. Providers are shared by every session and must be safe for
// concurrent use.
//
// To add a provider: put its settings in its section's type in
// internal/config (a field named after it, decoded from [stt.NAME] or
// [tts.NAME]), and add a row here that calls its constructor. The language
// models' table is orchestration's (see orchestration.ModelProviders).
var (
	vadProviders = map[string]func(config.VAD) (vad.Model, error){
		"silero": func(c config.VAD) (vad.Model, error) {
			m, err := silero.New(c.Silero)
			if err != nil {
				return nil, fmt.Errorf("%w (run `make models` to fetch the model)", err)
			}
			return m, nil
		},
	}
	sttProviders = map[string]func(config.STT) (stt.Recognizer, error){
		"sphinx": func(c config.STT) (stt.Recognizer, error) {
			r, err := sphinx.New(c.Sphinx)
			if err != nil {
				return nil, err
			}
			return r, nil
		},
		"openai": func(c config.STT) (stt.Recognizer, error) {
			r, err := sttopenai.New(c.OpenAI)
			if err != nil {
				return nil, err
			}
			return r, nil
		},
		"deepgram": func(c config.STT) (stt.Recognizer, error) {
			r, err := sttdeepgram.New(c.Deepgram)
			if err != nil {
				return nil, err
			}
			return r, nil
		},
	}
	ttsProviders = map[string]func(config.TTS) (tts.Synthesizer, error){
		"flite": func(c config.TTS) (tts.Synthesizer, error) {
			s, err := flite.New(flite.Config{Voice: c.FliteVoice()})
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		"openai": func(c config.TTS) (tts.Synthesizer, error) {
			s, err := ttsopenai.New(c.OpenAI)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		"elevenlabs": func(c config.TTS) (tts.Synthesizer, error) {
			s, err := elevenlabs.New(c.ElevenLabs)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		"cartesia": func(c config.TTS) (tts.Synthesizer, error) {
			s, err := cartesia.New(c.Cartesia)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}

	// The providers' settings checks, for Check: they read no file and
	// dial nothing, but name a missing key variable. Providers without a
	// row have nothing to check before they are built.
	sttChecks = map[string]func(config.STT) error{
		"openai":   func(c config.STT) error { return c.OpenAI.Validate() },
		"deepgram": func(c config.STT) error { return c.Deepgram.Validate() },
	}
	ttsChecks = map[string]func(config.TTS) error{
		"openai":     func(c config.TTS) error { return c.OpenAI.Validate() },
		"elevenlabs": func(c config.TTS) error { return c.ElevenLabs.Validate() },
		"cartesia":   func(c config.TTS) error { return c.Cartesia.Validate() },
	}
)

// Providers returns the names each table knows, sorted, by section: "vad",
// "stt", "tts" and "llm".
func Providers() map[string][]string {
	return map[string][]string{
		"vad": slices.Sorted(maps.Keys(vadProviders)),
		"stt": slices.Sorted(maps.Keys(sttProviders)),
		"tts": slices.Sorted(maps.Keys(ttsProviders)),
		"llm": orchestration.ModelProviders(),
	}
}

// Check reports every provider name and orchestration mode of cfg that no
// table holds, without building anything.
func Check(cfg config.Config) error {
	known := Providers()
	var errs []error
	check := func(where, section, name string) {
		if !slices.Contains(known[section], name) {
			errs = append(errs, fmt.Errorf("%w: %s %q (known: %s)", ErrUnknownProvider, where, name, strings.Join(known[section], ", ")))
		}
	}
	check("vad.provider", "vad", cfg.VAD.Provider)
	check("stt.provider", "stt", cfg.STT.Provider)
	check("tts.provider", "tts", cfg.TTS.Provider)
	for _, sec := range []struct {
		name    string
		direct  bool
		backups []string
	}{{"stt", len(cfg.STT.Failover) > 0, cfg.STT.Backups()}, {"tts", len(cfg.TTS.Failover) > 0, cfg.TTS.Backups()}} {
		key := sec.name + ".resilience.failover"
		if sec.direct {
			key = sec.name + ".failover"
		}
		for i, name := range sec.backups {
			check(fmt.Sprintf("%s[%d]", key, i), sec.name, name)
		}
	}
	for _, name := range append([]string{cfg.STT.Provider}, cfg.STT.Backups()...) {
		if v := sttChecks[name]; v != nil {
			if err := v(cfg.STT); err != nil {
				errs = append(errs, fmt.Errorf("stt.%s: %w", name, err))
			}
		}
	}
	for _, name := range append([]string{cfg.TTS.Provider}, cfg.TTS.Backups()...) {
		if v := ttsChecks[name]; v != nil {
			if err := v(cfg.TTS); err != nil {
				errs = append(errs, fmt.Errorf("tts.%s: %w", name, err))
			}
		}
	}
	check("llm.provider", "llm", cfg.LLM.Provider)
	for i, m := range cfg.Models {
		if m.Provider != "" {
			check(fmt.Sprintf("models[%d].provider", i), "llm", m.Provider)
		}
	}
	if m := cfg.Orchestration.Mode; m != "" && !slices.Contains(orchestration.Modes(), m) {
		errs = append(errs, fmt.Errorf("%w: orchestration.mode %q (known: %s)", orchestration.ErrConfig, m, strings.Join(orchestration.Modes(), ", ")))
	}
	errs = append(errs, checkSettings(cfg)...)
	return errors.Join(errs...)
}

// checkSettings runs the checks that building the providers and sessions
// would run on their settings, without loading a model: `voiced
// check-config` and `voiced serve` (through Load) refuse the same files.
// Whatever a constructor validates from configuration alone belongs here.
func checkSettings(cfg config.Config) []error {
	var errs []error
	if err := cfg.Telemetry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: %w", err))
	}
	scriptedRules := func(where string, m config.LLM, rules []config.Rule) {
		if m.Provider != "" && m.Provider != "scripted" {
			return
		}
		c := m.Scripted
		c.Rules = rules
		if _, err := scripted.New(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	scriptedRules("llm.scripted.rules", cfg.LLM, cfg.LLM.Scripted.Rules)
	models := map[string]config.LLM{"": cfg.LLM, "default": cfg.LLM}
	for i, m := range cfg.Models {
		scriptedRules(fmt.Sprintf("models[%d].scripted.rules", i), m.LLM, m.Scripted.Rules)
		models[m.Name] = m.LLM
	}
	for i, a := range cfg.Agents {
		if len(a.Rules) > 0 {
			scriptedRules(fmt.Sprintf("agents[%d].rules", i), models[a.Model], a.Rules)
		}
	}
	errs = append(errs, checkVoices(cfg)...)
	tc := cfg.Turn
	if cfg.Session.ImmediateInterruption {
		tc.Interruption = turntaking.Immediate
	}
	if _, err := turntaking.New(tc); err != nil {
		errs = append(errs, fmt.Errorf("turn: %w", err))
	}
	return errs
}

// checkVoices checks the voices of flite wherever it speaks, that agents'
// voices name providers of [tts] and its failover, and that agents sharing
// a voice on [tts] provider share it on each backup (the backups' voices
// are found from it).
func checkVoices(cfg config.Config) []error {
	var errs []error
	chain := append([]string{cfg.TTS.Provider}, cfg.TTS.Backups()...)
	flt := func(where, v string) {
		if v != "" && !slices.Contains(flite.Voices(), v) {
			errs = append(errs, fmt.Errorf("%s: %w: %q (have %s)", where, flite.ErrUnknownVoice, v, strings.Join(flite.Voices(), ", ")))
		}
	}
	if slices.Contains(chain, "flite") {
		if cfg.TTS.Provider == "flite" {
			flt("tts.voice", cfg.TTS.Voice)
		}
		flt("tts.flite.voice", cfg.TTS.Flite.Voice)
		for i, a := range cfg.Agents {
			where := fmt.Sprintf("agents[%d].voice", i)
			if a.Voices["flite"] != "" {
				where = fmt.Sprintf("agents[%d].voices.flite", i)
			}
			flt(where, cfg.AgentVoice(a, "flite"))
		}
	}
	for i, a := range cfg.Agents {
		for _, p := range slices.Sorted(maps.Keys(a.Voices)) {
			if !slices.Contains(chain, p) {
				errs = append(errs, fmt.Errorf("agents[%d].voices: %q is not tts.provider or one of its failover (%s)", i, p, strings.Join(chain, ", ")))
				continue
			}
			if p == cfg.TTS.Provider {
				continue
			}
			key := cfg.AgentVoice(a, cfg.TTS.Provider)
			for _, b := range cfg.Agents[:i] {
				if cfg.AgentVoice(b, cfg.TTS.Provider) == key && cfg.AgentVoice(b, p) != "" && cfg.AgentVoice(b, p) != a.Voices[p] {
					errs = append(errs, fmt.Errorf("agents[%d].voices.%s: agents %q and %q speak %q on %s but differ on %s: give them different voices there too", i, p, b.Name, a.Name, key, cfg.TTS.Provider, p))
				}
			}
		}
	}
	return errs
}

// BackupVoices returns, for each backup of [tts] failover, the voice each
// agent speaks on it keyed by the agent's voice on [tts] provider: the
// failover synthesizer's Member.Voices.
func BackupVoices(cfg config.Config) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, b := range cfg.TTS.Backups() {
		m := map[string]string{}
		for _, a := range cfg.Agents {
			if v := cfg.AgentVoice(a, b); v != "" {
				m[cfg.AgentVoice(a, cfg.TTS.Provider)] = v
			}
		}
		out[b] = m
	}
	return out
}

// provide makes one provider from its table, recording its Close.
func provide[C, P any](a *Assembly, section, name string, table map[string]func(C) (P, error), c C) (P, error) {
	var zero P
	build := table[name]
	if build == nil {
		known := slices.Sorted(maps.Keys(table))
		return zero, fmt.Errorf("%w: %s.provider %q (known: %s)", ErrUnknownProvider, section, name, strings.Join(known, ", "))
	}
	p, err := build(c)
	if err != nil {
		return zero, fmt.Errorf("assembly: %s %s: %w", section, name, err)
	}
	if cl, ok := any(p).(io.Closer); ok {
		a.closers = append(a.closers, cl.Close)
	}
	return p, nil
}
