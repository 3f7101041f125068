// Package agents is the agents library: the ChatModel seam that model
// providers implement (in agents/llm/...), tools, LLM agents with handoffs,
// and the Runnable contract that workflow agents compose. It knows nothing
// of the pipeline: the stage that runs a session's active agent for each
// user turn is package processors/agent.
package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
)

// Role is the author of a message.
type Role string

const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON object text
}

// Message is one entry of a conversation.
type Message struct {
	Role    Role
	Content string
	// Name is the agent that wrote an assistant message, or the tool whose
	// result a tool message holds.
	Name string
	// ToolCalls are the calls an assistant message asked for.
	ToolCalls []ToolCall
	// ToolCallID links a tool message to the call it answers.
	ToolCallID string
	// Interrupted marks an assistant message cut off by the user: Content
	// holds only what was played.
	Interrupted bool
}

// ToolSpec describes a tool to a model.
type ToolSpec struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments object.
	Parameters json.RawMessage
}

// Request is what a ChatModel is asked.
type Request struct {
	System   string    // instructions, may be empty
	Messages []Message // oldest first; the last one is usually the user's
	Tools    []ToolSpec
	// MaxTokens bounds the answer (0: the provider's default).
	MaxTokens int
	// Temperature, if set, overrides the provider's default.
	Temperature *float64
}

// Usage counts tokens.
type Usage struct {
	InputTokens, OutputTokens int
}

// Event is one item of a model's streamed answer: a delta of text, or one
// complete tool call (providers assemble streamed call fragments), or the
// final usage and finish reason.
type Event struct {
	Text         string
	ToolCall     *ToolCall
	Usage        *Usage
	FinishReason string // "stop", "tool_calls", "length", ... on the last event
}

// ChatModel streams an answer. The sequence ends early, with ctx's error,
// when ctx is cancelled (barge-in). Implementations are safe for concurrent
// use.
type ChatModel interface {
	Stream(ctx context.Context, req Request) iter.Seq2[Event, error]
}

// ModelInfo is implemented by models that can name themselves (for traces
// and logs).
type ModelInfo interface {
	Provider() string // "openai", "scripted", ...
	Model() string    // the model's name at the provider
}

// ErrEmptyRequest is returned for a request without messages.
var ErrEmptyRequest = errors.New("agents: empty request")

// ProviderError is the one error type providers return for failed calls.
// Retryable drives retries and failover.
type ProviderError struct {
	Provider  string
	Op        string // "stream", "tool", ...
	Status    int    // HTTP status, 0 if none
	Retryable bool
	Err       error
}

func (e *ProviderError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s: status %d: %v", e.Provider, e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Provider, e.Op, e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a ProviderError marked retryable.
func IsRetryable(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) && pe.Retryable
}

// Generate collects a streamed answer's text.
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
