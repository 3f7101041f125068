package assembly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/httptool"
	"github.com/voiced-dev/voiced/agents/mcp"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
	"github.com/voiced-dev/voiced/internal/orchestration"
)

// mcpConnectWait bounds the wait for each MCP server's first connection at
// startup; a server that is not up by then joins later.
const mcpConnectWait = 10 * time.Second

// declaredTools makes the [[tools]] HTTP tools and starts the [[mcp]]
// servers (their Close is recorded in a).
func (a *Assembly) declaredTools(ctx context.Context, cfg config.Config, log *slog.Logger) (map[string]agents.Tool, map[string]agents.Toolset, error) {
	tools := map[string]agents.Tool{}
	for _, tc := range cfg.Tools {
		t, err := httptool.New(tc, httptool.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("assembly: %w", err)
		}
		tools[tc.Name] = t
	}
	sets := map[string]agents.Toolset{}
	for _, mc := range cfg.MCP {
		wait, cancel := context.WithTimeout(ctx, mcpConnectWait)
		s, err := mcp.Start(wait, mc, mcp.Options{Logger: log})
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("assembly: %w", err)
		}
		a.closers = append(a.closers, s.Close)
		sets[mc.Name] = s
		log.Info("mcp server", "name", mc.Name, "tools", len(s.Tools()))
	}
	return tools, sets, nil
}

// ErrUnknownTool is returned by CheckTools for an agent naming a tool that
// is neither built in nor declared.
var ErrUnknownTool = errors.New("assembly: unknown tool")

// CheckTools reports every tool an agent of cfg names that is neither a
// built-in tool, nor declared in [[tools]], nor one of extra (tools the
// program registers itself).
func CheckTools(cfg config.Config, extra ...string) error {
	known := slices.Collect(maps.Keys(demo.Tools(nil)))
	known = append(known, "start_returns", durable.SignalToolName, durable.StatusToolName, durable.CancelToolName)
	known = append(known, cfg.DeclaredTools()...)
	known = append(known, cfg.WorkflowTools()...)
	known = append(known, extra...)
	// A tool of an MCP server is only known once the server runs.
	mcp := slices.ContainsFunc(cfg.Agents, func(a config.AgentSpec) bool { return len(a.MCP) > 0 })
	var errs []error
	for i, w := range cfg.Workflows {
		for j, s := range w.Steps {
			if s.Tool != "" && s.MCP == "" && !slices.Contains(known, s.Tool) {
				errs = append(errs, fmt.Errorf("%w: workflows[%d] (%s).steps[%d] (%s).tool: %q", ErrUnknownTool, i, w.Name, j, s.Name, s.Tool))
			}
		}
	}
	for i, a := range cfg.Agents {
		for _, t := range a.Tools {
			if !slices.Contains(known, t) {
				errs = append(errs, fmt.Errorf("%w: agents[%d] (%s).tools: %q", ErrUnknownTool, i, a.Name, t))
			}
		}
		// Handoff conditions and actions name tools too: a condition on
		// a tool the agent cannot call would never hold.
		for _, target := range slices.Sorted(maps.Keys(a.Handoff)) {
			h := a.Handoff[target]
			for _, t := range h.AfterTools {
				if !slices.Contains(known, t) && t != orchestration.PublishTool && !mcp {
					errs = append(errs, fmt.Errorf("%w: agents[%d] (%s).handoff.%s.after_tools: %q", ErrUnknownTool, i, a.Name, target, t))
				}
			}
			if h.CallTool != "" && !slices.Contains(known, h.CallTool) {
				errs = append(errs, fmt.Errorf("%w: agents[%d] (%s).handoff.%s.call_tool: %q", ErrUnknownTool, i, a.Name, target, h.CallTool))
			}
		}
	}
	return errors.Join(errs...)
}
