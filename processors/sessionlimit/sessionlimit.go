// Package sessionlimit ends a session politely when it has lasted its
// maximum length, or when the server drains: it warns the user shortly
// before the end, lets the answer being given finish, says goodbye, and
// ends the session with a reason.
package sessionlimit

import (
	"context"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Reasons of the End frames the stage emits (and of Processor.Reason).
const (
	ReasonMaxDuration = "max_duration"
	ReasonShutdown    = "shutting_down"
)

// Config tunes the stage. The zero value gives the defaults.
type Config struct {
	// MaxDuration is how long a session may last (default 1 h).
	MaxDuration time.Duration `toml:"max_duration"`
	// WarnBefore is how long before MaxDuration Warning is said (default
	// 1 min; it is not said when it would come before half the length).
	WarnBefore time.Duration `toml:"warn_before"`
	// Warning is said WarnBefore the end (default "We have about a minute
	// left.").
	Warning string `toml:"warning"`
	// Goodbye is said at MaxDuration (default "We are out of time.
	// Goodbye!").
	Goodbye string `toml:"goodbye"`
	// ShutdownGoodbye is said when the server drains (default "The
	// service is restarting. Please call again. Goodbye!").
	ShutdownGoodbye string `toml:"shutdown_goodbye"`
	// AnswerGrace is how long the goodbye waits for the answer being
	// given to finish (default 15 s); past it the goodbye follows the
	// answer's text.
	AnswerGrace time.Duration `toml:"answer_grace"`
}

func (c *Config) defaults() {
	if c.MaxDuration <= 0 {
		c.MaxDuration = time.Hour
	}
	if c.WarnBefore == 0 {
		c.WarnBefore = time.Minute
	}
	if c.Warning == "" {
		c.Warning = "We have about a minute left."
	}
	if c.Goodbye == "" {
		c.Goodbye = "We are out of time. Goodbye!"
	}
	if c.ShutdownGoodbye == "" {
		c.ShutdownGoodbye = "The service is restarting. Please call again. Goodbye!"
	}
	if c.AnswerGrace <= 0 {
		c.AnswerGrace = 15 * time.Second
	}
}

// Processor is the stage. It goes after the agent stage and before
// synthesis, so that it sees the agent's answers going down: an answer is
// in flight from its LLMResponseStart to the BotStoppedSpeaking after it
// (or an Interruption; a TextOnly answer, never heard, to its
// LLMResponseEnd). What it says it speaks as LLMResponseStart,
// LLMText, LLMResponseEnd in the current turn, only while no answer is in
// flight and the bot is silent (Runtime.State), waiting up to AnswerGrace
// for that; after the goodbye it emits End with the reason, so the stages
// after it play the goodbye out and the session ends. Its timers run on a
// goroutine of the pipeline's (Runtime.Go). Every frame is passed on.
type Processor struct {
	cfg   Config
	drain <-chan struct{}
	rt    pipeline.Runtime
	state *pipeline.State
	out   pipeline.Emitter

	mu     sync.Mutex
	busy   bool
	shown  bool          // the answer in flight is text-only (ends at LLMResponseEnd)
	wake   chan struct{} // signalled when busy clears
	reason string        // set when End is emitted
}

// New returns the stage. drain, if not nil, is closed when the server
// begins to shut down (transport.Admission.Draining): the session then
// finishes its answer, says ShutdownGoodbye and ends.
func New(cfg Config, drain <-chan struct{}) *Processor {
	cfg.defaults()
	return &Processor{cfg: cfg, drain: drain, wake: make(chan struct{}, 1)}
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "sessionlimit" }

// Reason returns the reason of the End the stage emitted, "" if none.
func (p *Processor) Reason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// Start implements pipeline.Starter.
func (p *Processor) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.state, p.out = rt, rt.State(), out
	rt.Go(p.run)
	return nil
}

func (p *Processor) run(ctx context.Context) {
	end := time.NewTimer(p.cfg.MaxDuration)
	defer end.Stop()
	var warn <-chan time.Time
	if w := p.cfg.MaxDuration - p.cfg.WarnBefore; p.cfg.WarnBefore > 0 && w >= p.cfg.MaxDuration/2 {
		t := time.NewTimer(w)
		defer t.Stop()
		warn = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-warn:
			warn = nil
			if !p.say(ctx, p.cfg.Warning, "") {
				return
			}
		case <-end.C:
			p.say(ctx, p.cfg.Goodbye, ReasonMaxDuration)
			return
		case <-p.drain:
			p.say(ctx, p.cfg.ShutdownGoodbye, ReasonShutdown)
			return
		}
	}
}

// say waits (up to AnswerGrace) until no answer is in flight and the bot
// is silent, then speaks text, and ends the session with reason if it is
// not "". It reports false if ctx ended first.
func (p *Processor) say(ctx context.Context, text, reason string) bool {
	grace := time.NewTimer(p.cfg.AnswerGrace)
	defer grace.Stop()
	for {
		p.mu.Lock()
		if !p.busy && !p.state.BotSpeaking() {
			break
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-p.wake:
			continue
		case <-grace.C:
		}
		p.mu.Lock()
		break
	}
	defer p.mu.Unlock()
	p.busy = true
	m := frame.Meta{Turn: p.rt.Turn()}
	p.out.Emit(&frame.LLMResponseStart{Meta: m})
	p.out.Emit(&frame.LLMText{Meta: m, Text: text})
	p.out.Emit(&frame.LLMResponseEnd{Meta: m})
	if reason != "" {
		p.reason = reason
		p.out.Emit(&frame.End{Meta: m, Reason: reason})
	}
	return true
}

// Process implements pipeline.Processor.
func (p *Processor) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	p.mu.Lock()
	switch f := f.(type) {
	case *frame.LLMResponseStart:
		p.busy, p.shown = true, f.TextOnly
	case *frame.LLMResponseEnd:
		if p.shown { // a text-only answer is over once written
			p.busy, p.shown = false, false
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	case *frame.BotStoppedSpeaking, *frame.Interruption:
		p.busy, p.shown = false, false
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	out.Pass(f)
	return nil
}
