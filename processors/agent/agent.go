// Package agent is the pipeline stage that hosts a session's agents (see
// package agents): for each final user transcript it runs the active agent
// under the turn context, streams the answer downstream, and keeps the
// conversation's history, trimmed to what the user heard.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Config configures a Processor.
type Config struct {
	// Agents are the agents the session can talk to, by Name. A handoff to
	// one of them makes it the active agent for the following turns.
	Agents []agents.Runnable
	// Entry names the agent active at the start (default: the first).
	Entry string
	// Voices maps agent names to TTS voices ("" or missing: the default).
	Voices map[string]string
	// MaxHistory bounds the messages kept (default 20); tool calls and
	// their results count as messages.
	MaxHistory int
	// MaxHistoryBytes bounds the text the history keeps (contents, tool
	// names and arguments; default DefaultMaxHistoryBytes), so that a
	// session's memory stays bounded however long its messages are. The
	// newest message is kept whatever its size.
	MaxHistoryBytes int
	// SessionID is given to agents and tools through the context
	// (agents.SessionFromContext).
	SessionID string
	// Start is the body of the request that started the session (an RTVI
	// /start), given to agents and tools (agents.SessionInfo.Start).
	Start json.RawMessage
	// Metadata is what the transport knew of the session (the dialed
	// number, a start request's fields): it seeds the session's
	// agents.SessionState, which agents and tools reach through
	// agents.SessionFromContext.
	Metadata map[string]string
	// Apology is said when an answer fails: the model returned an error
	// (a timeout, a 5xx, a malformed stream) or stalled. Default
	// DefaultApology; the session goes on and the next turn is answered
	// as usual.
	Apology string
	// StallTimeout gives up on an answer whose agent has sent nothing (no
	// text, no tool call or result) for this long: the model is cancelled
	// and Apology is said (default DefaultStallTimeout).
	StallTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultApology      = "Sorry, I could not answer that just now. Please try again."
	DefaultStallTimeout = 15 * time.Second
)

// ErrStalled is the cause an answer is cancelled with when its agent sent
// nothing for Config.StallTimeout.
var ErrStalled = errors.New("agent: the answer stalled")

// DefaultMaxHistoryBytes is the default of Config.MaxHistoryBytes.
const DefaultMaxHistoryBytes = 64 << 10

// ErrNoAgent is returned by New without agents, or with an Entry that
// is not one of them.
var ErrNoAgent = errors.New("agent: no such agent")

// Processor is the pipeline stage that runs the session's active agent. For each
// final user transcript it runs the agent under the turn context (barge-in
// cancels the model and any tool in flight) and streams the answer
// downstream as LLMResponseStart, LLMText..., LLMResponseEnd, with Handoff,
// ToolCall and ToolResult frames as they happen.
//
// The history is the conversation the agents are given on the next turn.
// It keeps the user's messages, the agents' tool calls and their results,
// and each handoff as a transfer call with its result, the way the model
// saw them; an assistant message's text is only what was played to the
// user, written from BotSpoke frames coming back upstream from the output
// transport, so an interrupted answer is recorded as only what the user
// heard (and marked Interrupted); a text-only answer (a TextOnly
// transcript's) is recorded as written. A Deferred transcript is added as
// a user message, unanswered, before the next message answered.
// MaxHistory and MaxHistoryBytes trim the
// oldest messages, but
// never keeps a tool result without the call it answers; a call whose
// result never came (the turn was interrupted while the tool ran) is given
// a result that says so.
//
// A Processor serves one session. History, Active and Say are safe to call from
// any goroutine.
type Processor struct {
	cfg    Config
	byName map[string]agents.Runnable
	rt     pipeline.Runtime
	out    pipeline.Emitter

	done  chan struct{} // closed by Close
	state *agents.SessionState

	mu     sync.Mutex
	closed bool
	active string
	// last is closed when the latest answer's goroutine ends; answers run
	// one after another.
	last    chan struct{}
	history []agents.Message
	// reply is the answer being given and spoken, not yet in history.
	reply *reply
	// notes are user messages to add to the conversation without an
	// answer (Deferred transcripts): they go into the history, after the
	// reply before them, when the next message is answered.
	notes []string
}

// reply is one answer's messages while the agent writes them and the
// transport plays them: texts fill with what was played.
type reply struct {
	turn uint32
	msgs []*agents.Message
	// texts are the messages that carry spoken text, in the order the text
	// was said; played text fills them in that order.
	texts []*said
	next  int // first entry of texts not wholly played
	// step is the assistant message the agent's current model step writes
	// (its text, then its tool calls), or nil.
	step    *agents.Message
	handoff int // numbers the handoff calls made up for Handoff events without one
	// shown is set for a text-only answer: nothing of it is played, and
	// its text is recorded as said as it is written.
	shown bool
}

// said is the text an assistant message was given to speak.
type said struct {
	m    *agents.Message
	text strings.Builder
	// played counts the words of text played so far.
	played int
}

// New returns the agent stage.
func New(cfg Config) (*Processor, error) {
	if len(cfg.Agents) == 0 {
		return nil, fmt.Errorf("%w: the stage needs at least one agent", ErrNoAgent)
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = 20
	}
	if cfg.MaxHistoryBytes <= 0 {
		cfg.MaxHistoryBytes = DefaultMaxHistoryBytes
	}
	if cfg.Apology == "" {
		cfg.Apology = DefaultApology
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	s := &Processor{cfg: cfg, byName: map[string]agents.Runnable{}, done: make(chan struct{}), state: agents.NewSessionState(cfg.Metadata)}
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
func (s *Processor) Name() string { return "agent" }

// Start implements pipeline.Starter.
func (s *Processor) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	s.rt, s.out = rt, out
	return nil
}

// Active returns the name of the active agent.
func (s *Processor) Active() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// History returns a copy of the conversation so far, including the answer
// in progress (its text as played so far) and the notes not yet answered.
func (s *Processor) History() []agents.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := cloneMessages(s.history)
	if s.reply != nil {
		for _, m := range s.reply.msgs {
			h = append(h, cloneMessage(*m))
		}
	}
	for _, n := range s.notes {
		h = append(h, agents.Message{Role: agents.RoleUser, Content: n})
	}
	return h
}

// Process implements pipeline.Processor.
func (s *Processor) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.Transcript:
		if !f.Final || strings.TrimSpace(f.Text) == "" {
			out.Pass(f)
			return nil
		}
		text := strings.TrimSpace(f.Text)
		if f.Deferred {
			// Noted after the answers queued before it, so the
			// conversation keeps the order the user wrote in.
			s.queue(func() {
				s.mu.Lock()
				s.note(text)
				s.mu.Unlock()
			})
			return nil
		}
		// The answer runs on its own goroutine so this stage keeps taking
		// frames (BotSpoke from upstream, interruptions) meanwhile.
		s.queue(func() { s.answer(ctx, f.Turn, text, f.TextOnly) })
		return nil
	case *frame.BotSpoke:
		s.spoke(f)
		return nil // consumed
	}
	out.Pass(f)
	return nil
}

// Close implements io.Closer: after it, Say and Go do nothing (the
// session is over), the SessionInfo's Done channel given to agents and
// tools is closed, and the session's State is closed. It is idempotent.
func (s *Processor) Close() error {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	if first {
		s.state.Close()
	}
	return nil
}

// State returns the session's state (metadata, tools that ran).
func (s *Processor) State() *agents.SessionState { return s.state }

// Go runs fn on a goroutine of the pipeline, which waits for it; ctx is the
// session context. It does nothing after Close, or before Start.
func (s *Processor) Go(fn func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.rt == nil {
		return
	}
	s.rt.Go(fn)
}

func (s *Processor) info() agents.SessionInfo {
	return agents.SessionInfo{ID: s.cfg.SessionID, Say: s.Say, Done: s.done, State: s.state, Go: s.Go, Start: s.cfg.Start}
}

// queue runs fn on a pipeline goroutine after the answers before it.
func (s *Processor) queue(fn func()) {
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
func (s *Processor) Say(text string) {
	text = strings.TrimSpace(text)
	if text == "" || s.rt == nil {
		return
	}
	s.queue(func() {
		turn := s.rt.Turn()
		s.mu.Lock()
		s.settle()
		r := &reply{turn: turn}
		r.say(s.active, text)
		s.reply = r
		s.mu.Unlock()
		s.out.Emit(&frame.LLMResponseStart{Meta: frame.Meta{Turn: turn}})
		s.out.Emit(&frame.LLMText{Meta: frame.Meta{Turn: turn}, Text: text})
		s.out.Emit(&frame.LLMResponseEnd{Meta: frame.Meta{Turn: turn}})
	})
}

// answer runs the active agent for one user message under the turn
// context. A textOnly answer is shown, not spoken (see
// frame.LLMResponseStart).
func (s *Processor) answer(ctx context.Context, turn uint32, text string, textOnly bool) {
	if ctx.Err() != nil {
		return // interrupted before it started
	}
	out := s.out
	s.mu.Lock()
	s.settle()
	for _, n := range s.notes {
		s.history = append(s.history, agents.Message{Role: agents.RoleUser, Content: n})
	}
	s.notes = nil
	s.history = append(s.history, agents.Message{Role: agents.RoleUser, Content: text})
	s.trim()
	in := agents.Input{Messages: cloneMessages(s.history)}
	agent := s.byName[s.active]
	r := &reply{turn: turn, shown: textOnly}
	s.reply = r
	s.mu.Unlock()

	turnCtx := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog: an agent that sends nothing for StallTimeout is
	// cancelled, and the user hears the apology.
	stall := time.AfterFunc(s.cfg.StallTimeout, func() { cancel(ErrStalled) })
	defer stall.Stop()
	ctx = agents.WithSession(ctx, s.info())
	meta := frame.Meta{Turn: turn}
	// open: the text sent so far does not end in whitespace, so the
	// sentence splitters downstream still hold its last sentence.
	open := false
	out.Emit(&frame.LLMResponseStart{Meta: meta, TextOnly: textOnly})
	for ev, err := range agent.Run(ctx, in) {
		if err == nil && ctx.Err() == nil {
			stall.Reset(s.cfg.StallTimeout)
		}
		if err != nil || ctx.Err() != nil {
			if turnCtx.Err() != nil {
				return // interrupted, or the session ended
			}
			if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
				err = cause
			}
			out.Emit(&frame.Error{Meta: meta, Err: fmt.Errorf("agent: %s: %w", agent.Name(), err)})
			// The apology is spoken as the agent's, and the history keeps
			// it like any answer that was heard.
			s.mu.Lock()
			r.say(agent.Name(), " "+s.cfg.Apology)
			s.mu.Unlock()
			out.Emit(&frame.LLMText{Meta: meta, Text: " " + s.cfg.Apology})
			break
		}
		author := ev.Agent
		if author == "" {
			author = agent.Name()
		}
		switch ev.Kind {
		case agents.EventText:
			if ev.Text != "" {
				s.mu.Lock()
				r.say(author, ev.Text)
				s.mu.Unlock()
				out.Emit(&frame.LLMText{Meta: meta, Text: ev.Text})
				last, _ := utf8.DecodeLastRuneInString(ev.Text)
				open = !unicode.IsSpace(last)
			}
		case agents.EventHandoff:
			h := ev.Handoff
			if h == nil {
				continue
			}
			s.mu.Lock()
			if s.byName[h.To] != nil {
				s.active = h.To
			}
			r.handoffHop(author, *h)
			s.mu.Unlock()
			out.Emit(&frame.Handoff{Meta: meta, From: h.From, To: h.To, Voice: s.cfg.Voices[h.To]})
		case agents.EventToolCall:
			if c := ev.ToolCall; c != nil {
				if open {
					// The text before a tool call is complete: a line
					// break ends its sentence, so that it is said now,
					// not after the tool ("let me check" while it runs;
					// a carrier's transfer_call waits for it).
					out.Emit(&frame.LLMText{Meta: meta, Text: "\n"})
					open = false
				}
				s.mu.Lock()
				r.call(author, *c)
				s.mu.Unlock()
				out.Emit(&frame.ToolCall{Meta: meta, Agent: ev.Agent, Name: c.Name, CallID: c.ID, Arguments: c.Arguments})
			}
		case agents.EventToolResult:
			if res := ev.ToolResult; res != nil {
				s.mu.Lock()
				r.result(author, *res)
				s.mu.Unlock()
				tr := &frame.ToolResult{Meta: meta, Agent: ev.Agent, Name: res.Name, CallID: res.CallID}
				if res.Err != nil {
					tr.Err = res.Err.Error()
				}
				out.Emit(tr)
			}
		}
	}
	out.Emit(&frame.LLMResponseEnd{Meta: meta})
}

// say adds text the agent author says to the reply: to the current step's
// message if author writes it and it has no tool calls yet, else to a new
// assistant message. The text of a shown reply is its content at once.
func (r *reply) say(author, text string) {
	if r.step == nil || r.step.Name != author || len(r.step.ToolCalls) > 0 {
		r.step = &agents.Message{Role: agents.RoleAssistant, Name: author}
		r.msgs = append(r.msgs, r.step)
	}
	if r.shown {
		r.step.Content += text
		return
	}
	if n := len(r.texts); n == 0 || r.texts[n-1].m != r.step {
		r.texts = append(r.texts, &said{m: r.step})
	}
	r.texts[len(r.texts)-1].text.WriteString(text)
}

// call adds a tool call of author's to the current step's message if
// author writes it, else to a new assistant message.
func (r *reply) call(author string, c agents.ToolCall) {
	if r.step == nil || r.step.Name != author || r.answered(r.step) {
		r.step = &agents.Message{Role: agents.RoleAssistant, Name: author}
		r.msgs = append(r.msgs, r.step)
	}
	r.step.ToolCalls = append(r.step.ToolCalls, c)
}

// answered reports whether a result for one of m's calls is in the reply:
// a call added to m now would come after a result.
func (r *reply) answered(m *agents.Message) bool {
	i := slices.Index(r.msgs, m)
	return i >= 0 && i+1 < len(r.msgs) && r.msgs[i+1].Role == agents.RoleTool
}

// result adds a tool message right after the results already given to
// the calls of the message that made the call (calls of agents working in
// parallel may be answered in any order). A result for a call the reply
// does not hold gets its call made up, so that it is never alone.
func (r *reply) result(author string, res agents.ToolResult) {
	m := &agents.Message{Role: agents.RoleTool, Name: res.Name, ToolCallID: res.CallID, Content: res.Content}
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if !slices.ContainsFunc(r.msgs[i].ToolCalls, func(c agents.ToolCall) bool { return c.ID == res.CallID }) {
			continue
		}
		j := i + 1
		for j < len(r.msgs) && r.msgs[j].Role == agents.RoleTool {
			j++
		}
		r.msgs = slices.Insert(r.msgs, j, m)
		return
	}
	r.step = nil
	r.call(author, agents.ToolCall{ID: res.CallID, Name: res.Name, Arguments: "{}"})
	r.msgs = append(r.msgs, m)
	r.step = nil
}

// handoffHop records a handoff as the model saw it: the transfer call of
// the agent that handed off (made up if the event has no call ID) and its
// result. The target's messages follow.
func (r *reply) handoffHop(author string, h agents.Handoff) {
	if h.From != "" {
		author = h.From
	}
	id := h.CallID
	if id == "" {
		r.handoff++
		id = fmt.Sprintf("handoff_%d_%d", r.turn, r.handoff)
	}
	r.call(author, agents.ToolCall{ID: id, Name: agents.HandoffToolName(h.To), Arguments: "{}"})
	r.result(author, agents.ToolResult{CallID: id, Name: agents.HandoffToolName(h.To), Content: agents.TransferResult(h.To)})
	r.step = nil
}

// interruptedResult is the result given to a call whose result never came.
const interruptedResult = "error: the user interrupted before the tool returned"

// note adds an unanswered user message, keeping the notes within
// MaxHistory and MaxHistoryBytes (the newest kept whatever its size), as
// the history they go into is. s.mu held.
func (s *Processor) note(text string) {
	s.notes = append(s.notes, text)
	size := 0
	for _, n := range s.notes {
		size += len(n)
	}
	for len(s.notes) > 1 && (len(s.notes) > s.cfg.MaxHistory || size > s.cfg.MaxHistoryBytes) {
		size -= len(s.notes[0])
		s.notes = s.notes[1:]
	}
}

// spoke fills the reply's texts, in order, with the words of f.
func (s *Processor) spoke(f *frame.BotSpoke) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reply
	if r == nil || f.Turn != r.turn || len(r.texts) == 0 {
		return
	}
	words := strings.Fields(f.Text)
	for len(words) > 0 {
		t := r.texts[r.next]
		take := len(words)
		if r.next < len(r.texts)-1 { // the last text takes any excess
			room := len(strings.Fields(t.text.String())) - t.played
			if room <= 0 {
				r.next++
				continue
			}
			take = min(take, room)
		}
		if t.m.Content != "" {
			t.m.Content += " "
		}
		t.m.Content += strings.Join(words[:take], " ")
		t.played += take
		words = words[take:]
	}
}

// settle moves the previous answer into the history: a text less played
// than said is marked Interrupted, a text message with nothing played and
// no tool calls is dropped, and a call without a result gets one. s.mu
// held.
func (s *Processor) settle() {
	r := s.reply
	if r == nil {
		return
	}
	s.reply = nil
	if r.shown {
		for _, m := range r.msgs {
			if m.Role == agents.RoleAssistant {
				m.Content = strings.TrimSpace(m.Content)
			}
		}
	}
	for _, t := range r.texts {
		if strings.Join(strings.Fields(t.m.Content), " ") != strings.Join(strings.Fields(t.text.String()), " ") {
			t.m.Interrupted = true
		}
	}
	for i, m := range r.msgs {
		switch {
		case m.Role == agents.RoleTool:
			continue // copied with the call it answers
		case m.Content == "" && len(m.ToolCalls) == 0:
			continue // said nothing that was heard
		}
		s.history = append(s.history, *m)
		answered := map[string]bool{}
		for _, t := range r.msgs[i+1:] {
			if t.Role != agents.RoleTool {
				break
			}
			s.history = append(s.history, *t)
			answered[t.ToolCallID] = true
		}
		for _, c := range m.ToolCalls {
			if !answered[c.ID] {
				s.history = append(s.history, agents.Message{Role: agents.RoleTool, Name: c.Name, ToolCallID: c.ID, Content: interruptedResult})
			}
		}
	}
	s.trim()
}

// trim drops the oldest messages beyond MaxHistory, then the oldest
// while the history holds more than MaxHistoryBytes (keeping the newest),
// and then any tool messages left at the start without the call they
// answer. s.mu held.
func (s *Processor) trim() {
	h := s.history
	if over := len(h) - s.cfg.MaxHistory; over > 0 {
		h = h[over:]
	}
	size := 0
	for _, m := range h {
		size += messageBytes(m)
	}
	for len(h) > 1 && size > s.cfg.MaxHistoryBytes {
		size -= messageBytes(h[0])
		h = h[1:]
	}
	for len(h) > 0 && h[0].Role == agents.RoleTool {
		h = h[1:]
	}
	s.history = append(s.history[:0], h...)
}

// messageBytes is the text m holds.
func messageBytes(m agents.Message) int {
	n := len(m.Content) + len(m.Name) + len(m.ToolCallID)
	for _, c := range m.ToolCalls {
		n += len(c.ID) + len(c.Name) + len(c.Arguments)
	}
	return n
}

func cloneMessage(m agents.Message) agents.Message {
	m.ToolCalls = slices.Clone(m.ToolCalls)
	return m
}

func cloneMessages(ms []agents.Message) []agents.Message {
	out := make([]agents.Message, len(ms))
	for i, m := range ms {
		out[i] = cloneMessage(m)
	}
	return out
}
