package workflow

import (
	"context"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// BranchResult is the outcome of one member run whose output is combined
// with others (Parallel branches, Supervisor tasks, Planner steps).
type BranchResult struct {
	Agent  string // the member's name
	Task   string // what it was asked, when the workflow chose it; may be empty
	Output string // its output (partial when Err is set)
	Err    error  // nil on success
}

// FormatResults writes results the way synthesis requests show them: a
// "Results:" line, then one line per result, in order:
//
//	Results:
//	- weather (weather in Paris): Sunny, 21 degrees.
//	- clock: failed: connection refused
//
// The parenthesised task appears only when Task is set.
func FormatResults(results []BranchResult) string {
	var b strings.Builder
	b.WriteString("Results:\n")
	for _, r := range results {
		b.WriteString("- ")
		b.WriteString(r.Agent)
		if r.Task != "" {
			b.WriteString(" (")
			b.WriteString(r.Task)
			b.WriteString(")")
		}
		b.WriteString(": ")
		if r.Err != nil {
			b.WriteString("failed: ")
			b.WriteString(r.Err.Error())
		} else {
			b.WriteString(strings.TrimSpace(r.Output))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// DefaultSynthesisSystem is the system prompt of synthesis requests when
// none is configured.
const DefaultSynthesisSystem = "You combine the results of other agents into one short answer to the user's question, suitable to be spoken aloud. Use only the results given; say so if a part failed."

// synthesisRequest asks model for one answer from results: the
// conversation, then a user message holding FormatResults(results) and an
// instruction.
func synthesisRequest(system string, in agents.Input, results []BranchResult) agents.Request {
	if system == "" {
		system = DefaultSynthesisSystem
	}
	msg := FormatResults(results) + "\nAnswer the user's question from these results."
	return agents.Request{System: system, Messages: appendMessages(in.Messages, agents.Message{Role: agents.RoleUser, Content: msg})}
}

// streamModel emits the model's answer as EventText from agent.
func streamModel(ctx context.Context, model agents.ChatModel, req agents.Request, agent string, emit emitFunc) error {
	for ev, err := range model.Stream(ctx, req) {
		if err != nil {
			return err
		}
		if ev.Text == "" {
			continue
		}
		if !emit(agents.AgentEvent{Agent: agent, Kind: agents.EventText, Text: ev.Text}) {
			return errStopped
		}
	}
	return nil
}

// appendMessages returns a new slice: base then extra. It never writes to
// base's backing array, which concurrent members share.
func appendMessages(base []agents.Message, extra ...agents.Message) []agents.Message {
	out := make([]agents.Message, 0, len(base)+len(extra))
	out = append(out, base...)
	return append(out, extra...)
}

// outputMessage is how one member's output is shown to another.
func outputMessage(agent, output string) agents.Message {
	return agents.Message{Role: agents.RoleUser, Name: agent, Content: output}
}

// withOutputs returns in's conversation followed by the given outputs and,
// if task is not empty, a final user message holding task.
func withOutputs(in agents.Input, results []BranchResult, task string) agents.Input {
	extra := make([]agents.Message, 0, len(results)+1)
	for _, r := range results {
		if r.Err == nil {
			extra = append(extra, outputMessage(r.Agent, r.Output))
		}
	}
	if task != "" {
		extra = append(extra, agents.Message{Role: agents.RoleUser, Content: task})
	}
	return agents.Input{Messages: appendMessages(in.Messages, extra...)}
}
