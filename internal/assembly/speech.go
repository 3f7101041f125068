package assembly

import (
	"fmt"
	"log/slog"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/stt"
	sttfailover "github.com/voiced-dev/voiced/processors/stt/failover"
	"github.com/voiced-dev/voiced/processors/tts"
	ttsfailover "github.com/voiced-dev/voiced/processors/tts/failover"
)

// recognizer builds [stt]'s provider, observed by obs; with a failover
// list ([stt] failover or [stt.resilience] failover) or [stt.resilience]
// set, it and the backups go behind one failover recognizer (retries,
// timeout, breakers).
func recognizer(a *Assembly, c config.STT, obs provider.Observer, log *slog.Logger) (stt.Recognizer, error) {
	c.OpenAI.Observer, c.Deepgram.Observer = obs, obs
	rec, err := provide(a, "stt", c.Provider, sttProviders, c)
	if err != nil || !resilient(c.Backups(), c.Resilience.Retries, c.Resilience.Timeout != 0, c.Resilience.BreakerFailures) {
		return rec, err
	}
	members := []sttfailover.Member{{Name: c.Provider, Recognizer: rec}}
	for _, name := range c.Backups() {
		r, err := provide(a, "stt", name, sttProviders, c)
		if err != nil {
			return nil, err
		}
		members = append(members, sttfailover.Member{Name: name, Recognizer: r})
	}
	cfg := c.Resilience
	cfg.Logger = log
	f, err := sttfailover.New(cfg, members...)
	if err != nil {
		return nil, fmt.Errorf("assembly: stt.resilience: %w", err)
	}
	return f, nil // its members are closed by the Assembly
}

// synthesizer is recognizer's twin for [tts]. The backups speak their own
// voice ([tts.NAME] voice), or an agent's voices entry for them: [tts]
// voice and the agents' voice name the primary's.
func synthesizer(a *Assembly, cfg config.Config, obs provider.Observer, log *slog.Logger) (tts.Synthesizer, error) {
	c := cfg.TTS
	c.OpenAI.Observer, c.ElevenLabs.Observer, c.Cartesia.Observer = obs, obs, obs
	syn, err := provide(a, "tts", c.Provider, ttsProviders, c)
	if err != nil || !resilient(c.Backups(), c.Resilience.Retries, c.Resilience.Timeout != 0, c.Resilience.BreakerFailures) {
		return syn, err
	}
	members := []ttsfailover.Member{{Name: c.Provider, Synthesizer: syn}}
	backup := c
	backup.Voice = ""
	voices := BackupVoices(cfg)
	for _, name := range c.Backups() {
		s, err := provide(a, "tts", name, ttsProviders, backup)
		if err != nil {
			return nil, err
		}
		members = append(members, ttsfailover.Member{Name: name, Synthesizer: s, Voices: voices[name]})
	}
	rc := c.Resilience
	rc.Logger = log
	f, err := ttsfailover.New(rc, members...)
	if err != nil {
		return nil, fmt.Errorf("assembly: tts.resilience: %w", err)
	}
	return f, nil
}

// resilient reports whether a resilience section asks for anything.
func resilient(failover []string, retries int, timeout bool, breaker int) bool {
	return len(failover) > 0 || retries > 0 || timeout || breaker > 0
}
