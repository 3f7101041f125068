package agents

import "context"

// Hooks observe, and in places steer, an LLMAgent's run. Every field is
// optional. BeforeTool and AfterTool are called from the goroutines that run
// a step's tools, possibly at the same time: hooks must be safe for
// concurrent use. Hooks run under the run's context and should return
// quickly.
type Hooks struct {
	// BeforeRun is called when Run starts, before the first model step. An
	// error ends the run with that error.
	BeforeRun func(ctx context.Context, agent string, in Input) error
	// AfterRun is called when Run ends, with its error (nil on success,
	// including after a handoff whose target succeeded).
	AfterRun func(ctx context.Context, agent string, err error)
	// BeforeTool is called before each tool call. An error vetoes the call:
	// the tool is not run and the error's text is its result.
	BeforeTool func(ctx context.Context, agent string, call ToolCall) error
	// AfterTool is called with each tool call's result, vetoed or not.
	AfterTool func(ctx context.Context, agent string, res ToolResult)
	// OnHandoff is called when control passes from this agent to another,
	// after the handoff's own OnHandoff succeeded.
	OnHandoff func(ctx context.Context, from, to string)
}
