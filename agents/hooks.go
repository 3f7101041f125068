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

// JoinHooks returns Hooks that call each of hs's hooks in turn. For
// BeforeRun and BeforeTool the first error stops the others and is
// returned.
func JoinHooks(hs ...Hooks) Hooks {
	var out Hooks
	for _, h := range hs {
		if f, prev := h.BeforeRun, out.BeforeRun; f != nil {
			out.BeforeRun = func(ctx context.Context, agent string, in Input) error {
				if prev != nil {
					if err := prev(ctx, agent, in); err != nil {
						return err
					}
				}
				return f(ctx, agent, in)
			}
		}
		if f, prev := h.AfterRun, out.AfterRun; f != nil {
			out.AfterRun = func(ctx context.Context, agent string, err error) {
				if prev != nil {
					prev(ctx, agent, err)
				}
				f(ctx, agent, err)
			}
		}
		if f, prev := h.BeforeTool, out.BeforeTool; f != nil {
			out.BeforeTool = func(ctx context.Context, agent string, call ToolCall) error {
				if prev != nil {
					if err := prev(ctx, agent, call); err != nil {
						return err
					}
				}
				return f(ctx, agent, call)
			}
		}
		if f, prev := h.AfterTool, out.AfterTool; f != nil {
			out.AfterTool = func(ctx context.Context, agent string, res ToolResult) {
				if prev != nil {
					prev(ctx, agent, res)
				}
				f(ctx, agent, res)
			}
		}
		if f, prev := h.OnHandoff, out.OnHandoff; f != nil {
			out.OnHandoff = func(ctx context.Context, from, to string) {
				if prev != nil {
					prev(ctx, from, to)
				}
				f(ctx, from, to)
			}
		}
	}
	return out
}
