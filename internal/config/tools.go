package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"

	"github.com/voiced-dev/voiced/agents/httptool"
	"github.com/voiced-dev/voiced/agents/mcp"
)

// validateTools checks [[tools]] and [[mcp]] (URLs, schemas, headers, the
// environment variables they name, which must be set) and the agents'
// references to MCP servers. An error names the entry's line in file when
// the entry is written as a [[tools]] or [[mcp]] table there.
func (c Config) validateTools(file []byte) []error {
	var errs []error
	names := map[string]bool{}
	for i, t := range c.Tools {
		where := fmt.Sprintf("tools[%d]", i) + lineOf(file, "tools", i)
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", where, t.Name))
		}
		names[t.Name] = true
		if _, err := httptool.New(t, httptool.Options{LookupEnv: os.LookupEnv}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	servers := map[string]bool{}
	for i, m := range c.MCP {
		where := fmt.Sprintf("mcp[%d]", i) + lineOf(file, "mcp", i)
		if servers[m.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", where, m.Name))
		}
		servers[m.Name] = true
		if err := mcp.Check(m, os.LookupEnv); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	for i, a := range c.Agents {
		for _, s := range a.MCP {
			if !servers[s] {
				errs = append(errs, fmt.Errorf("agents[%d].mcp%s: unknown MCP server %q", i, lineOf(file, "agents", i), s))
			}
		}
	}
	return errs
}

// lineOf returns " (line N)" for the line of the i-th [[name]] header of
// file, or "" when there is none (no file, or the array is written inline).
func lineOf(file []byte, name string, i int) string {
	if file == nil {
		return ""
	}
	header := regexp.MustCompile(`^\s*\[\[\s*` + regexp.QuoteMeta(name) + `\s*\]\]\s*(#.*)?$`)
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(nil, 1<<20)
	line, n := 0, 0
	inString := false
	for sc.Scan() {
		line++
		text := sc.Text()
		// Skip the inside of multi-line strings, where a header is text.
		if c := bytes.Count([]byte(text), []byte(`"""`)) + bytes.Count([]byte(text), []byte(`'''`)); c%2 == 1 {
			inString = !inString
			continue
		}
		if inString || !header.MatchString(text) {
			continue
		}
		if n == i {
			return fmt.Sprintf(" (line %d)", line)
		}
		n++
	}
	return ""
}

// DeclaredTools returns the names of the [[tools]] entries.
func (c Config) DeclaredTools() []string {
	var out []string
	for _, t := range c.Tools {
		out = append(out, t.Name)
	}
	return slices.Clip(out)
}
