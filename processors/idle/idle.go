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
// synthesis, so that it sees the agent's answers going down. Whether the user
// or the bot is speaking it reads from Runtime.State (published as the
// detector and the output stage create their events), so a prompt is never
// spoken over a bot whose BotStartedSpeaking is still on its way upstream.
// The idle clock runs only while the user is not speaking, the bot is silent
// and no answer is in flight (between LLMResponseStart and the
// BotStoppedSpeaking after it, or an Interruption; a TextOnly answer until
// its LLMResponseEnd); the speaking events that
// reach it restart the clock, and any user speech or typed text resets the
// prompt count. A prompt is spoken as LLMResponseStart, LLMText,
// LLMResponseEnd in the current turn; after MaxPrompts prompts the next
// timeout says Goodbye the same way and emits End, so the stages after it
// play it out and the session ends. The timer runs on a goroutine of the
// pipeline's (Runtime.Go). Every frame is passed on.
type Processor struct {
	cfg   Config
	rt    pipeline.Runtime
	state *pipeline.State
	out   pipeline.Emitter

	mu      sync.Mutex
	timer   *time.Timer
	busy    bool // an answer is on its way
	shown   bool // it is a text-only answer, never heard
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

// Ended reports whether the stage has said goodbye and ended the session.
func (p *Processor) Ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// Start implements pipeline.Starter: it starts the clock.
func (p *Processor) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.state, p.out = rt, rt.State(), out
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
		p.prompts = 0
	case *frame.Transcript:
		if f.Final {
			p.prompts = 0
		}
	case *frame.LLMResponseStart:
		p.busy, p.shown = true, f.TextOnly
	case *frame.LLMResponseEnd:
		if p.shown { // a text-only answer is over once written
			p.busy, p.shown = false, false
		}
	case *frame.BotStoppedSpeaking:
		p.busy = false
	case *frame.Interruption:
		p.busy, p.shown = false, false
	}
	p.rearm()
	p.mu.Unlock()
	out.Pass(f)
	return nil
}

// quiet reports whether nobody speaks and no answer is on its way. p.mu
// held.
func (p *Processor) quiet() bool {
	return !p.state.UserSpeaking() && !p.state.BotSpeaking() && !p.busy && !p.ended
}

// rearm restarts the clock if everyone is quiet, else stops it. p.mu held.
func (p *Processor) rearm() {
	p.timer.Stop()
	if p.quiet() {
		p.timer.Reset(p.cfg.Timeout)
	}
}

// fire runs on the timer goroutine.
func (p *Processor) fire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.quiet() {
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
