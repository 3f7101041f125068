// Package agents hosts the conversation's LLM stage: the ChatModel seam that
// model providers implement (in agents/llm/...), and the pipeline stage that
// runs the active agent for each user turn, streams its answer downstream and
// keeps the conversation history.
package agents

import (
	"context"
	"errors"
	"iter"
	"strings"
)

// Role is the author of a message.
type Role string

const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one entry of a conversation.
type Message struct {
	Role    Role
	Content string
	// Interrupted marks an assistant message cut off by the user: Content
	// holds only what was played.
	Interrupted bool
}

// Request is what a ChatModel is asked.
type Request struct {
	System   string    // instructions, may be empty
	Messages []Message // oldest first; the last one is usually the user's
}

// Event is one item of a model's streamed answer.
type Event struct {
	Text string // a delta of the answer text
}

// ChatModel streams an answer. The sequence ends early, with ctx's error,
// when ctx is cancelled (barge-in). Implementations are safe for concurrent
// use.
type ChatModel interface {
	Stream(ctx context.Context, req Request) iter.Seq2[Event, error]
}

// ErrEmptyRequest is returned for a request without messages.
var ErrEmptyRequest = errors.New("agents: empty request")

// Generate collects a streamed answer.
func Generate(ctx context.Context, m ChatModel, req Request) (string, error) {
	var b strings.Builder
	for ev, err := range m.Stream(ctx, req) {
		if err != nil {
			return b.String(), err
		}
		b.WriteString(ev.Text)
	}
	return b.String(), nil
}
