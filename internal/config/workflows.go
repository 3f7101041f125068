package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"

	"github.com/voiced-dev/voiced/agents/durable/declared"
)

// Workflow is an entry of [[workflows]] (see agents/durable/declared.Config
// and docs/workflows.md); its steps are [[workflows.steps]].
type Workflow = declared.Config

// WorkflowStep is an entry of [[workflows.steps]].
type WorkflowStep = declared.Step

// validateWorkflows checks [[workflows]]: each one's keys and templates
// (declared.Check), unique names, and the agents and MCP servers steps
// name. Which tools exist is checked where the built-in tools are known
// (internal/assembly.CheckTools). An error names the line of its
// [[workflows]] or [[workflows.steps]] header in file.
func (c Config) validateWorkflows(file []byte) []error {
	var errs []error
	agentNames := map[string]bool{}
	if len(c.Agents) == 0 {
		agentNames[c.Agent.Name] = true
	}
	for _, a := range c.Agents {
		agentNames[a.Name] = a.IsEnabled()
	}
	servers := map[string]bool{}
	for _, m := range c.MCP {
		servers[m.Name] = true
	}
	names := map[string]bool{}
	for i, w := range c.Workflows {
		where := fmt.Sprintf("workflows[%d]", i) + lineOf(file, "workflows", i)
		stepWhere := func(j int) string {
			return fmt.Sprintf("workflows[%d].steps[%d]", i, j) + stepLineOf(file, i, j)
		}
		if names[w.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", where, w.Name))
		}
		names[w.Name] = true
		for _, p := range declared.Check(w, os.LookupEnv) {
			if p.Step >= 0 {
				errs = append(errs, fmt.Errorf("%s: %w", stepWhere(p.Step), p.Err))
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", where, p.Err))
			}
		}
		for j, s := range w.Steps {
			if s.Agent != "" && !agentNames[s.Agent] {
				errs = append(errs, fmt.Errorf("%s.agent: unknown or disabled agent %q", stepWhere(j), s.Agent))
			}
			if s.MCP != "" && !servers[s.MCP] {
				errs = append(errs, fmt.Errorf("%s.mcp: unknown MCP server %q", stepWhere(j), s.MCP))
			}
		}
	}
	return errs
}

// WorkflowTools returns the names of the tools the [[workflows]] give
// agents: start_<name> for each, and the control tools when there is any.
func (c Config) WorkflowTools() []string {
	var out []string
	for _, w := range c.Workflows {
		out = append(out, "start_"+w.Name)
	}
	return out
}

var (
	workflowsHeader = regexp.MustCompile(`^\s*\[\[\s*workflows\s*\]\]\s*(#.*)?$`)
	stepsHeader     = regexp.MustCompile(`^\s*\[\[\s*workflows\s*\.\s*steps\s*\]\]\s*(#.*)?$`)
)

// stepLineOf returns " (line N)" for the line of the j-th [[workflows.steps]]
// header after the i-th [[workflows]] header of file, or "" when there is
// none.
func stepLineOf(file []byte, i, j int) string {
	if file == nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(nil, 1<<20)
	line, wf, step := 0, -1, 0
	inString := false
	for sc.Scan() {
		line++
		text := sc.Text()
		if n := bytes.Count([]byte(text), []byte(`"""`)) + bytes.Count([]byte(text), []byte(`'''`)); n%2 == 1 {
			inString = !inString
			continue
		}
		switch {
		case inString:
		case workflowsHeader.MatchString(text):
			wf, step = wf+1, 0
		case stepsHeader.MatchString(text) && wf == i:
			if step == j {
				return fmt.Sprintf(" (line %d)", line)
			}
			step++
		}
	}
	return ""
}
