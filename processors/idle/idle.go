// Package idle notices a user who has gone quiet: after a while without
// user speech, while the bot is silent, it prompts them, and after a few
// unanswered prompts it says goodbye and ends the session.
package idle

import (
	"context"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Config tunes the stage. The zero value gives the defaults.
type Config struct {
	// Timeout is the silence (no user speech, bot silent, no answer being
	// prepared) after which the user is prompted (default 10 s).
	Timeout time.Duration `toml:"timeout"`
	// Prompt is what the bot says then (default "Are you still there?").
	Prompt string `toml:"prompt"`
	// MaxPrompts unanswered prompts end the session (default 2).
	MaxPrompts int `toml:"max_prompts"`
	// Goodbye is said before ending (default "It seems you have gone.
	// Goodbye!").
	Goodbye string `toml:"goodbye"`
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Prompt == "" {
		c.Prompt = "Are you still there?"
	}
	if c.MaxPrompts <= 0 {
		c.MaxPrompts = 2
	}
	if c.Goodbye == "" {
		c.Goodbye = "It seems you have gone. Goodbye!"
	}
}

// Processor is the idle stage. It goes after the agent stage and before
// synthesis, so that it sees the agent's answers going down and the
// output's BotStartedSpeaking/BotStoppedSpeaking coming up. The idle clock
// runs only while the user is not speaking, the bot is silent and no answer
// is in flight (between LLMResponseStart and the BotStoppedSpeaking after
// it); any user speech or typed text resets the prompt count. A prompt is
// spoken as LLMResponseStart, LLMText, LLMResponseEnd in the current turn;
// after MaxPrompts prompts the next timeout says Goodbye the same way and
// emits End, so the stages after it play it out and the session ends.
// The timer runs on a goroutine of the pipeline's (Runtime.Go). Every frame
// is passed on.
type Processor struct {
	cfg Config
	rt  pipeline.Runtime
	out pipeline.Emitter

	mu      sync.Mutex
	timer   *time.Timer
	user    bool // the user is speaking
	bot     bool // the bot is speaking
	busy    bool // an answer is on its way
	prompts int
	ended   bool
}

// New returns an idle stage.
func New(cfg Config) *Processor {
	cfg.defaults()
	return &Processor{cfg: cfg}
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "idle" }

// Start implements pipeline.Starter: it starts the clock.
func (p *Processor) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.out = rt, out
	p.timer = time.NewTimer(p.cfg.Timeout)
	rt.Go(func(ctx context.Context) {
		defer p.timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.timer.C:
				p.fire()
			}
		}
	})
	return nil
}

// Process implements pipeline.Processor.
func (p *Processor) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	p.mu.Lock()
	switch f := f.(type) {
	case *frame.UserStartedSpeaking:
		p.user, p.prompts = true, 0
	case *frame.UserStoppedSpeaking:
		p.user = false
	case *frame.Transcript:
		if f.Final {
			p.prompts = 0
		}
	case *frame.LLMResponseStart:
		p.busy = true
	case *frame.BotStartedSpeaking:
		p.bot = true
	case *frame.BotStoppedSpeaking:
		p.bot, p.busy = false, false
	case *frame.Interruption:
		p.busy = false
	}
	p.rearm()
	p.mu.Unlock()
	out.Pass(f)
	return nil
}

// rearm restarts the clock if everyone is quiet, else stops it. p.mu held.
func (p *Processor) rearm() {
	p.timer.Stop()
	if !p.user && !p.bot && !p.busy && !p.ended {
		p.timer.Reset(p.cfg.Timeout)
	}
}

// fire runs on the timer goroutine.
func (p *Processor) fire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.user || p.bot || p.busy || p.ended {
		return
	}
	text := p.cfg.Prompt
	last := p.prompts >= p.cfg.MaxPrompts
	if last {
		text = p.cfg.Goodbye
	}
	p.prompts++
	p.busy = true
	m := frame.Meta{Turn: p.rt.Turn()}
	p.out.Emit(&frame.LLMResponseStart{Meta: m})
	p.out.Emit(&frame.LLMText{Meta: m, Text: text})
	p.out.Emit(&frame.LLMResponseEnd{Meta: m})
	if last {
		p.ended = true
		p.out.Emit(&frame.End{Meta: m, Reason: "user idle"})
	}
}
