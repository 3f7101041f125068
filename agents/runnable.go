package agents

import (
	"context"
	"iter"
	"strings"
)

// Runnable is anything that answers a conversation: an LLM agent, a
// workflow agent (sequential, parallel, loop, router, planner, graph), a
// supervisor. Run streams what it does; the text of its answer is the
// concatenation of its EventText events. Run stops early, with ctx's error,
// when ctx is cancelled (barge-in). Implementations are safe for concurrent
// use.
type Runnable interface {
	Name() string
	Run(ctx context.Context, in Input) iter.Seq2[AgentEvent, error]
}

// Input is what a Runnable is given.
type Input struct {
	// Messages is the conversation so far, oldest first, usually ending with
	// the user's message.
	Messages []Message
}

// Text returns the content of the last user message.
func (in Input) Text() string {
	for i := len(in.Messages) - 1; i >= 0; i-- {
		if in.Messages[i].Role == RoleUser {
			return in.Messages[i].Content
		}
	}
	return ""
}

// UserInput returns an Input holding one user message.
func UserInput(text string) Input {
	return Input{Messages: []Message{{Role: RoleUser, Content: text}}}
}

// EventKind says what an AgentEvent reports.
type EventKind uint8

const (
	EventText          EventKind = iota + 1 // Text: a delta of the answer
	EventToolCall                           // ToolCall: a tool is about to run
	EventToolResult                         // ToolResult: a tool finished
	EventHandoff                            // Handoff: control passed to another agent
	EventAgentStarted                       // Agent started
	EventAgentFinished                      // Agent finished
)

func (k EventKind) String() string {
	switch k {
	case EventText:
		return "text"
	case EventToolCall:
		return "tool_call"
	case EventToolResult:
		return "tool_result"
	case EventHandoff:
		return "handoff"
	case EventAgentStarted:
		return "agent_started"
	case EventAgentFinished:
		return "agent_finished"
	}
	return "unknown"
}

// ToolResult is the outcome of one tool call.
type ToolResult struct {
	CallID  string
	Name    string
	Content string // what the model is shown (an error's text when Err is set)
	Err     error
}

// Handoff reports a transfer of control.
type Handoff struct {
	From, To string
	// CallID is the ID of the transfer tool call the model made, if it
	// made one (an LLMAgent's handoffs do).
	CallID string
}

// AgentEvent is one item of a Runnable's stream. Agent is the name of the
// agent that produced it (a workflow's events carry its members' names).
type AgentEvent struct {
	Agent      string
	Kind       EventKind
	Text       string
	ToolCall   *ToolCall
	ToolResult *ToolResult
	Handoff    *Handoff
}

// Collect runs r and returns the text of its answer.
func Collect(ctx context.Context, r Runnable, in Input) (string, error) {
	var b strings.Builder
	for ev, err := range r.Run(ctx, in) {
		if err != nil {
			return b.String(), err
		}
		if ev.Kind == EventText {
			b.WriteString(ev.Text)
		}
	}
	return b.String(), nil
}
