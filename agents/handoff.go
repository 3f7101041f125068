package agents

import (
	"context"
	"strings"
)

// HandoffPrefix starts the name of every handoff tool.
const HandoffPrefix = "transfer_to_"

// HandoffToolName returns the name of the tool that hands off to the agent
// called name: "transfer_to_" and the name lowercased, with every character
// outside [a-z0-9_] replaced by '_'.
func HandoffToolName(name string) string {
	var b strings.Builder
	b.WriteString(HandoffPrefix)
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// HandoffSpec lets an LLMAgent pass the conversation to another Runnable.
// The target appears to the model as a tool named HandoffToolName(Target.Name())
// that takes no arguments; when the model calls it, the agent's Run goes on
// by running Target, in the same turn, and streams its events.
//
// (The event that reports a transfer is the Handoff struct of runnable.go;
// this is the declaration of a possible transfer.)
type HandoffSpec struct {
	Target Runnable
	// Description tells the model when to transfer (default: "Transfer the
	// conversation to <name>.").
	Description string
	// IsEnabled, if set, is asked before each model step; a handoff it
	// disables is not offered to the model, and a call to it is answered
	// as a call to an unknown tool.
	IsEnabled func(ctx context.Context) bool
	// InputFilter, if set, chooses what the target is given (default: the
	// whole conversation, including the transfer call and its result). It
	// must not modify its argument's slices; LastUserMessage and
	// NoToolMessages are ready-made filters.
	InputFilter func(Input) Input
	// OnHandoff, if set, runs before the transfer. If it fails, there is no
	// transfer: the error's text is fed back to the model as the transfer
	// tool's result and the agent goes on.
	OnHandoff func(ctx context.Context, from, to string) error
}

// TransferResult is the result a handoff's transfer call is given: what
// the model reads after it handed off to the agent called to.
func TransferResult(to string) string { return "Transferred to " + to + "." }

func (h HandoffSpec) toolSpec() ToolSpec {
	desc := h.Description
	if desc == "" {
		desc = "Transfer the conversation to " + h.Target.Name() + "."
	}
	return ToolSpec{
		Name:        HandoffToolName(h.Target.Name()),
		Description: desc,
		Parameters:  []byte(`{"type":"object","properties":{},"required":[],"additionalProperties":false}`),
	}
}

// LastUserMessage is an InputFilter that keeps only the last user message.
func LastUserMessage(in Input) Input {
	for i := len(in.Messages) - 1; i >= 0; i-- {
		if in.Messages[i].Role == RoleUser {
			return Input{Messages: []Message{in.Messages[i]}}
		}
	}
	return Input{}
}

// NoToolMessages is an InputFilter that drops tool results and the tool
// calls of assistant messages; assistant messages left empty are dropped.
func NoToolMessages(in Input) Input {
	out := make([]Message, 0, len(in.Messages))
	for _, m := range in.Messages {
		switch {
		case m.Role == RoleTool:
			continue
		case m.Role == RoleAssistant && len(m.ToolCalls) > 0:
			if m.Content == "" {
				continue
			}
			m.ToolCalls = nil
		}
		out = append(out, m)
	}
	return Input{Messages: out}
}
