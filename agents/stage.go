package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// StageConfig configures a Stage.
type StageConfig struct {
	// Agents are the agents the session can talk to, by Name. A handoff to
	// one of them makes it the active agent for the following turns.
	Agents []Runnable
	// Entry names the agent active at the start (default: the first).
	Entry string
	// Voices maps agent names to TTS voices ("" or missing: the default).
	Voices map[string]string
	// MaxHistory bounds the messages kept (default 20).
	MaxHistory int
	// SessionID is given to agents and tools through the context
	// (SessionFromContext).
	SessionID string
}

// ErrNoAgent is returned by NewStage without agents, or with an Entry that
// is not one of them.
var ErrNoAgent = errors.New("agents: no such agent")

// Stage is the pipeline stage that runs the session's active agent. For each
// final user transcript it runs the agent under the turn context (barge-in
// cancels the model and any tool in flight) and streams the answer
// downstream as LLMResponseStart, LLMText..., LLMResponseEnd, with Handoff,
// ToolCall and ToolResult frames as they happen. The assistant's side of the
// history is written from BotSpoke frames coming back upstream from the
// output transport, so an interrupted answer is recorded as only what the
// user heard.
//
// A Stage serves one session. History, Active and Say are safe to call from
// any goroutine.
type Stage struct {
	cfg    StageConfig
	byName map[string]Runnable
	rt     pipeline.Runtime
	out    pipeline.Emitter

	mu     sync.Mutex
	closed bool
	active string
	// last is closed when the latest answer's goroutine ends; answers run
	// one after another.
	last    chan struct{}
	history []Message
	// reply is the index in history of the answer being spoken, and its turn.
	reply     int
	replyTurn uint32
	replyFull string // everything the agent said for that answer
}

// NewStage returns the agent stage.
func NewStage(cfg StageConfig) (*Stage, error) {
	if len(cfg.Agents) == 0 {
		return nil, fmt.Errorf("%w: the stage needs at least one agent", ErrNoAgent)
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = 20
	}
	s := &Stage{cfg: cfg, byName: map[string]Runnable{}, reply: -1}
	for _, a := range cfg.Agents {
		s.byName[a.Name()] = a
	}
	s.active = cfg.Entry
	if s.active == "" {
		s.active = cfg.Agents[0].Name()
	}
	if s.byName[s.active] == nil {
		return nil, fmt.Errorf("%w: entry %q", ErrNoAgent, s.active)
	}
	return s, nil
}

// Name implements pipeline.Namer.
func (s *Stage) Name() string { return "agent" }

// Start implements pipeline.Starter.
func (s *Stage) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.rt, s.out = rt, out
	return nil
}

// Active returns the name of the active agent.
func (s *Stage) Active() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
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
		// The answer runs on its own goroutine so this stage keeps taking
		// frames (BotSpoke from upstream, interruptions) meanwhile.
		s.queue(func() { s.answer(ctx, f.Turn, strings.TrimSpace(f.Text)) })
		return nil
	case *frame.BotSpoke:
		s.spoke(f)
		return nil // consumed
	}
	out.Pass(f)
	return nil
}

// Close implements io.Closer: after it, Say does nothing (the session is
// over).
func (s *Stage) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// queue runs fn on a pipeline goroutine after the answers before it.
func (s *Stage) queue(fn func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	prev, done := s.last, make(chan struct{})
	s.last = done
	s.mu.Unlock()
	s.rt.Go(func(context.Context) {
		defer close(done)
		if prev != nil {
			<-prev
		}
		fn()
	})
}

// Say speaks text as the active agent, after any answer in progress: a
// workflow's announcement, say. It can be interrupted like any answer.
func (s *Stage) Say(text string) {
	text = strings.TrimSpace(text)
	if text == "" || s.rt == nil {
		return
	}
	s.queue(func() {
		turn := s.rt.Turn()
		s.mu.Lock()
		s.settle()
		s.push(Message{Role: RoleAssistant, Name: s.active})
		s.reply, s.replyTurn, s.replyFull = len(s.history)-1, turn, strings.Join(strings.Fields(text), " ")
		s.mu.Unlock()
		s.out.Emit(&frame.LLMResponseStart{Meta: frame.Meta{Turn: turn}})
		s.out.Emit(&frame.LLMText{Meta: frame.Meta{Turn: turn}, Text: text})
		s.out.Emit(&frame.LLMResponseEnd{Meta: frame.Meta{Turn: turn}})
	})
}

// answer runs the active agent for one user message under the turn context.
func (s *Stage) answer(ctx context.Context, turn uint32, text string) {
	if ctx.Err() != nil {
		return // interrupted before it started
	}
	out := s.out
	s.mu.Lock()
	s.settle()
	s.push(Message{Role: RoleUser, Content: text})
	in := Input{Messages: append([]Message(nil), s.history...)}
	agent := s.byName[s.active]
	s.push(Message{Role: RoleAssistant, Name: agent.Name()})
	s.reply, s.replyTurn, s.replyFull = len(s.history)-1, turn, ""
	s.mu.Unlock()

	ctx = WithSession(ctx, SessionInfo{ID: s.cfg.SessionID, Say: s.Say})
	meta := frame.Meta{Turn: turn}
	out.Emit(&frame.LLMResponseStart{Meta: meta})
	var full strings.Builder
	defer func() {
		s.mu.Lock()
		if s.replyTurn == turn {
			s.replyFull = strings.Join(strings.Fields(full.String()), " ")
		}
		s.mu.Unlock()
	}()
	for ev, err := range agent.Run(ctx, in) {
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			out.Emit(&frame.Error{Meta: meta, Err: fmt.Errorf("agents: %s: %w", agent.Name(), err)})
			break
		}
		switch ev.Kind {
		case EventText:
			if ev.Text != "" {
				full.WriteString(ev.Text)
				out.Emit(&frame.LLMText{Meta: meta, Text: ev.Text})
			}
		case EventHandoff:
			if ev.Handoff == nil {
				continue
			}
			s.mu.Lock()
			if s.byName[ev.Handoff.To] != nil {
				s.active = ev.Handoff.To
			}
			if s.reply >= 0 {
				s.history[s.reply].Name = ev.Handoff.To
			}
			s.mu.Unlock()
			out.Emit(&frame.Handoff{Meta: meta, From: ev.Handoff.From, To: ev.Handoff.To, Voice: s.cfg.Voices[ev.Handoff.To]})
		case EventToolCall:
			if c := ev.ToolCall; c != nil {
				out.Emit(&frame.ToolCall{Meta: meta, Agent: ev.Agent, Name: c.Name, CallID: c.ID, Arguments: c.Arguments})
			}
		case EventToolResult:
			if r := ev.ToolResult; r != nil {
				tr := &frame.ToolResult{Meta: meta, Agent: ev.Agent, Name: r.Name, CallID: r.CallID}
				if r.Err != nil {
					tr.Err = r.Err.Error()
				}
				out.Emit(tr)
			}
		}
	}
	out.Emit(&frame.LLMResponseEnd{Meta: meta})
}

// settle closes the previous answer before a new one: if less was played
// than the agent said, it was interrupted. s.mu held.
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

// SessionInfo is what agents and tools know of the session they serve.
type SessionInfo struct {
	ID string
	// Say speaks text to the session as the active agent (goroutine-safe).
	Say func(text string)
}

type sessionKey struct{}

// WithSession returns ctx carrying info.
func WithSession(ctx context.Context, info SessionInfo) context.Context {
	return context.WithValue(ctx, sessionKey{}, info)
}

// SessionFromContext returns the session a tool or agent runs for.
func SessionFromContext(ctx context.Context) (SessionInfo, bool) {
	info, ok := ctx.Value(sessionKey{}).(SessionInfo)
	return info, ok
}
