package agents

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Agent is a persona: instructions and the model that speaks for it.
type Agent struct {
	Name   string
	System string
	Model  ChatModel
}

// StageConfig configures a Stage.
type StageConfig struct {
	Agent Agent
	// MaxHistory bounds the messages kept (default 20).
	MaxHistory int
}

// Stage is the pipeline stage that runs the active agent. For each final
// user transcript it asks the model under the turn context and streams the
// answer downstream as LLMResponseStart, LLMText..., LLMResponseEnd. The
// assistant's side of the history is written from BotSpoke frames coming
// back upstream from the output transport, so an interrupted answer is
// recorded as only what the user heard.
//
// A Stage serves one session. History is safe to call from any goroutine.
type Stage struct {
	cfg StageConfig
	rt  pipeline.Runtime
	out pipeline.Emitter

	// last is closed when the latest answer's goroutine ends; answers run
	// one after another.
	last chan struct{}

	mu      sync.Mutex
	history []Message
	// reply is the index in history of the answer being spoken, and its turn.
	reply     int
	replyTurn uint32
	replyFull string // everything the model said for that answer
}

// NewStage returns the agent stage.
func NewStage(cfg StageConfig) (*Stage, error) {
	if cfg.Agent.Model == nil {
		return nil, fmt.Errorf("agents: agent %q has no model", cfg.Agent.Name)
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = 20
	}
	return &Stage{cfg: cfg, reply: -1}, nil
}

// Name implements pipeline.Namer.
func (s *Stage) Name() string { return "agent" }

// Start implements pipeline.Starter.
func (s *Stage) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.rt, s.out = rt, out
	return nil
}

// History returns a copy of the conversation so far.
func (s *Stage) History() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.history...)
}

// Process implements pipeline.Processor.
func (s *Stage) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.Transcript:
		if !f.Final || strings.TrimSpace(f.Text) == "" {
			out.Pass(f)
			return nil
		}
		// The answer streams on its own goroutine so this stage keeps
		// taking frames (BotSpoke from upstream, interruptions) meanwhile.
		prev, done := s.last, make(chan struct{})
		s.last = done
		s.rt.Go(func(context.Context) {
			defer close(done)
			if prev != nil {
				<-prev
			}
			s.answer(ctx, f, s.out)
		})
		return nil
	case *frame.BotSpoke:
		s.spoke(f)
		return nil // consumed
	}
	out.Pass(f)
	return nil
}

// answer runs the model for one user message under the turn context.
func (s *Stage) answer(ctx context.Context, t *frame.Transcript, out pipeline.Emitter) {
	if ctx.Err() != nil {
		return // interrupted before it started
	}
	turn := t.Turn
	s.mu.Lock()
	s.settle()
	s.push(Message{Role: RoleUser, Content: strings.TrimSpace(t.Text)})
	req := Request{System: s.cfg.Agent.System, Messages: append([]Message(nil), s.history...)}
	s.push(Message{Role: RoleAssistant})
	s.reply, s.replyTurn = len(s.history)-1, turn
	s.mu.Unlock()

	out.Emit(&frame.LLMResponseStart{Meta: frame.Meta{Turn: turn}})
	var full strings.Builder
	defer func() {
		s.mu.Lock()
		if s.replyTurn == turn {
			s.replyFull = strings.Join(strings.Fields(full.String()), " ")
		}
		s.mu.Unlock()
	}()
	for ev, err := range s.cfg.Agent.Model.Stream(ctx, req) {
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			out.Emit(&frame.Error{Err: fmt.Errorf("agents: %s: %w", s.cfg.Agent.Name, err)})
			break
		}
		if ev.Text != "" {
			full.WriteString(ev.Text)
			out.Emit(&frame.LLMText{Meta: frame.Meta{Turn: turn}, Text: ev.Text})
		}
	}
	out.Emit(&frame.LLMResponseEnd{Meta: frame.Meta{Turn: turn}})
}

// settle closes the previous answer before a new one: if less was played
// than the model said, it was interrupted. s.mu held.
func (s *Stage) settle() {
	if s.reply >= 0 && strings.Join(strings.Fields(s.history[s.reply].Content), " ") != s.replyFull {
		s.history[s.reply].Interrupted = true
	}
	s.reply = -1
}

// spoke appends played text to the answer of its turn.
func (s *Stage) spoke(f *frame.BotSpoke) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reply < 0 || f.Turn != s.replyTurn {
		return
	}
	m := &s.history[s.reply]
	if m.Content != "" {
		m.Content += " "
	}
	m.Content += strings.TrimSpace(f.Text)
}

// push appends m, dropping the oldest messages beyond MaxHistory. s.mu held.
func (s *Stage) push(m Message) {
	s.history = append(s.history, m)
	if over := len(s.history) - s.cfg.MaxHistory; over > 0 {
		s.history = append(s.history[:0], s.history[over:]...)
		if s.reply >= 0 {
			s.reply -= over
		}
	}
	// Drop an empty answer that was never spoken from the model's view.
	for i := 0; i < len(s.history)-1; i++ {
		if s.history[i].Role == RoleAssistant && s.history[i].Content == "" && i != s.reply {
			s.history = append(s.history[:i], s.history[i+1:]...)
			if s.reply > i {
				s.reply--
			}
			i--
		}
	}
}
