// Package scripted is a deterministic, offline ChatModel: the first rule
// that matches the conversation gives the answer, text and tool calls. It
// lets the demo and the tests hold a conversation, call tools and hand off
// between agents with no model server.
//
// A rule answers one of two situations:
//
//   - the user spoke last (or the last messages are only the results of a
//     handoff, tools named "transfer_to_..."): rules without AfterTool whose
//     Match matches the user's last message;
//   - tools answered last: rules with AfterTool, whose AfterTool pattern
//     matches the results of those tools (joined by newlines) and whose
//     Match, if any, matches the user's last message.
//
// A rule that would call a tool not offered in the request's Tools (or hand
// off to an agent not offered) is skipped, so one list of rules can serve
// several agents: a triage agent offered only the handoff and a billing
// agent offered only its tools. For example, in TOML:
//
//	[[rules]]
//	match = "charged twice|invoice|refund"
//	handoff = "billing"            # triage: transfer_to_billing
//
//	[[rules]]
//	match = "charged twice|invoice|refund"
//	reply = "Let me look that up."
//	tool = "lookup_invoice"        # billing: call the tool
//	args = '{"customer": "me"}'
//
//	[[rules]]
//	after_tool = "(?s)(.*)"
//	reply = "I found it: {result}"
package scripted

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// Rule maps a pattern to an answer.
type Rule struct {
	// Match is a regular expression (RE2 syntax), matched case-insensitively
	// against the user's last message; empty matches anything.
	Match string `toml:"match"`
	// Reply is the answer's text. $1, ${name} expand the groups of the
	// pattern that chose the rule (Match, or AfterTool after tools);
	// {previous} expands to the user's message before the last one,
	// {result} to the tools' results (after tools only).
	Reply string `toml:"reply"`
	// Tool, if set, is a tool the answer calls (after the Reply text), with
	// Args as its arguments: JSON object text (default "{}") where $1,
	// ${name}, {result} and {previous} expand as in Reply but escaped for a
	// JSON string.
	Tool string `toml:"tool"`
	Args string `toml:"args"`
	// Calls are further tool calls of the same answer, made in parallel.
	Calls []Call `toml:"calls"`
	// Handoff, if set, is an agent the answer hands off to: a call to the
	// tool agents.HandoffToolName(Handoff).
	Handoff string `toml:"handoff"`
	// AfterTool, if set, makes the rule answer tool results: a regular
	// expression matched case-insensitively against them.
	AfterTool string `toml:"after_tool"`
}

// Call is one tool call of a rule.
type Call struct {
	Tool string `toml:"tool"`
	Args string `toml:"args"`
}

// Config configures a Model. The zero value answers every message with the
// default fallback.
type Config struct {
	Rules    []Rule `toml:"rules"`
	Fallback string `toml:"fallback"` // reply when no rule matches
	// ToolFallback is the reply after tools when no rule matches (default
	// "{result}": the tools' results read out).
	ToolFallback string `toml:"tool_fallback"`
	// TokenDelay is the pause before each streamed word (default 0), to
	// imitate a real model's pace.
	TokenDelay time.Duration `toml:"token_delay"`
	// FirstTokenDelay is the pause before the first word (default 0).
	FirstTokenDelay time.Duration `toml:"first_token_delay"`
}

// DefaultFallback is the reply when no rule matches and Config.Fallback is
// empty.
const DefaultFallback = "I heard you say: $0."

// DefaultToolFallback is the reply after tools when no rule matches and
// Config.ToolFallback is empty.
const DefaultToolFallback = "{result}"

var all = regexp.MustCompile(`(?s).*`)

// ErrBadRule is returned by New for a rule whose pattern does not compile,
// or that has Args but no Tool, or a Call without a tool.
var ErrBadRule = errors.New("scripted: bad rule")

// Model is a scripted ChatModel. It is safe for concurrent use.
type Model struct {
	rules        []compiled
	fallback     string
	toolFallback string
	cfg          Config
}

type compiled struct {
	re        *regexp.Regexp
	afterTool *regexp.Regexp // nil: the rule answers the user
	reply     string
	calls     []Call
}

// New compiles the rules.
func New(cfg Config) (*Model, error) {
	m := &Model{fallback: cfg.Fallback, toolFallback: cfg.ToolFallback, cfg: cfg}
	if m.fallback == "" {
		m.fallback = DefaultFallback
	}
	if m.toolFallback == "" {
		m.toolFallback = DefaultToolFallback
	}
	for i, r := range cfg.Rules {
		re, err := regexp.Compile("(?i)" + r.Match)
		if err != nil {
			return nil, fmt.Errorf("%w %d (%q): %v", ErrBadRule, i, r.Match, err)
		}
		c := compiled{re: re, reply: r.Reply}
		if r.AfterTool != "" {
			if c.afterTool, err = regexp.Compile("(?i)" + r.AfterTool); err != nil {
				return nil, fmt.Errorf("%w %d (after_tool %q): %v", ErrBadRule, i, r.AfterTool, err)
			}
		}
		if r.Args != "" && r.Tool == "" {
			return nil, fmt.Errorf("%w %d: args without a tool", ErrBadRule, i)
		}
		if r.Tool != "" {
			c.calls = append(c.calls, Call{Tool: r.Tool, Args: r.Args})
		}
		for _, call := range r.Calls {
			if call.Tool == "" {
				return nil, fmt.Errorf("%w %d: a call without a tool", ErrBadRule, i)
			}
			c.calls = append(c.calls, call)
		}
		if r.Handoff != "" {
			c.calls = append(c.calls, Call{Tool: agents.HandoffToolName(r.Handoff)})
		}
		m.rules = append(m.rules, c)
	}
	return m, nil
}

// Provider implements agents.ModelInfo.
func (m *Model) Provider() string { return "scripted" }

// Model implements agents.ModelInfo.
func (m *Model) Model() string { return "scripted" }

// Answer is a full answer: text, then tool calls.
type Answer struct {
	Text      string
	ToolCalls []agents.ToolCall
}

// Reply returns the text of the answer to req.
func (m *Model) Reply(req agents.Request) (string, error) {
	a, err := m.Answer(req)
	return a.Text, err
}

// Answer returns the full answer to req. Tool call IDs are "call_<n>",
// numbered after the calls already in the conversation.
func (m *Model) Answer(req agents.Request) (Answer, error) {
	var last, previous string
	seen := 0
	for i := len(req.Messages) - 1; i >= 0 && seen < 2; i-- {
		if req.Messages[i].Role != agents.RoleUser {
			continue
		}
		if seen == 0 {
			last = req.Messages[i].Content
		} else {
			previous = req.Messages[i].Content
		}
		seen++
	}
	if seen == 0 {
		return Answer{}, agents.ErrEmptyRequest
	}
	last = strings.TrimSpace(last)
	if previous == "" {
		previous = "nothing yet"
	}
	results, afterTools := toolResults(req.Messages)
	result := strings.Join(results, "\n")
	offered := make(map[string]bool, len(req.Tools))
	for _, t := range req.Tools {
		offered[t.Name] = true
	}
	nextID := 0
	for _, msg := range req.Messages {
		nextID += len(msg.ToolCalls)
	}
	fill := func(s string) string {
		return strings.NewReplacer("{previous}", previous, "{result}", result).Replace(s)
	}
	fillJSON := func(s string) string {
		return strings.NewReplacer("{previous}", jsonEscape(previous), "{result}", jsonEscape(result)).Replace(s)
	}
	for _, r := range m.rules {
		if (r.afterTool != nil) != afterTools || !r.offered(offered) {
			continue
		}
		re, src := r.re, last
		if afterTools {
			if !r.re.MatchString(last) {
				continue
			}
			re, src = r.afterTool, result
		}
		idx := re.FindStringSubmatchIndex(src)
		if idx == nil {
			continue
		}
		a := Answer{Text: fill(string(re.ExpandString(nil, r.reply, src, idx)))}
		esc, escIdx := escapeGroups(src, idx)
		for _, c := range r.calls {
			args := "{}"
			if c.Args != "" {
				args = fillJSON(string(re.ExpandString(nil, c.Args, esc, escIdx)))
			}
			nextID++
			a.ToolCalls = append(a.ToolCalls, agents.ToolCall{ID: fmt.Sprintf("call_%d", nextID), Name: c.Tool, Arguments: args})
		}
		return a, nil
	}
	if afterTools {
		return Answer{Text: fill(m.toolFallback)}, nil
	}
	out := all.ExpandString(nil, m.fallback, last, all.FindStringSubmatchIndex(last))
	return Answer{Text: fill(string(out))}, nil
}

func (r compiled) offered(tools map[string]bool) bool {
	for _, c := range r.calls {
		if !tools[c.Tool] {
			return false
		}
	}
	return true
}

// toolResults returns the contents of the tool messages that end msgs,
// oldest first, leaving out handoff results; ok is false when there are
// none (the user spoke last, or the agent was just handed the
// conversation).
func toolResults(msgs []agents.Message) (results []string, ok bool) {
	i := len(msgs) - 1
	for ; i >= 0 && msgs[i].Role == agents.RoleTool; i-- {
	}
	for _, msg := range msgs[i+1:] {
		if !strings.HasPrefix(toolName(msgs[:i+1], msg), agents.HandoffPrefix) {
			results = append(results, msg.Content)
		}
	}
	return results, len(results) > 0
}

// toolName names the tool whose result msg is: its Name, or the name of
// the call it answers.
func toolName(before []agents.Message, msg agents.Message) string {
	if msg.Name != "" {
		return msg.Name
	}
	for i := len(before) - 1; i >= 0; i-- {
		for _, c := range before[i].ToolCalls {
			if c.ID == msg.ToolCallID {
				return c.Name
			}
		}
	}
	return ""
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// escapeGroups returns a text holding each submatch of src, escaped for a
// JSON string, and the indexes of those copies, for regexp.Expand.
func escapeGroups(src string, idx []int) (string, []int) {
	var b strings.Builder
	out := slices.Clone(idx)
	for g := 0; g+1 < len(idx); g += 2 {
		if idx[g] < 0 {
			continue
		}
		out[g] = b.Len()
		b.WriteString(jsonEscape(src[idx[g]:idx[g+1]]))
		out[g+1] = b.Len()
	}
	return b.String(), out
}

// Stream implements agents.ChatModel: the text word by word, then one event
// per tool call. The last event carries FinishReason "stop" or
// "tool_calls".
func (m *Model) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		a, err := m.Answer(req)
		if err != nil {
			yield(agents.Event{}, err)
			return
		}
		var words []string
		if a.Text != "" || len(a.ToolCalls) == 0 {
			words = strings.SplitAfter(a.Text, " ")
		}
		for i, w := range words {
			d := m.cfg.TokenDelay
			if i == 0 {
				d = m.cfg.FirstTokenDelay
			}
			if err := sleep(ctx, d); err != nil {
				yield(agents.Event{}, err)
				return
			}
			ev := agents.Event{Text: w}
			if i == len(words)-1 && len(a.ToolCalls) == 0 {
				ev.FinishReason = "stop"
			}
			if !yield(ev, nil) {
				return
			}
		}
		if len(words) == 0 {
			if err := sleep(ctx, m.cfg.FirstTokenDelay); err != nil {
				yield(agents.Event{}, err)
				return
			}
		}
		for i := range a.ToolCalls {
			if err := context.Cause(ctx); err != nil {
				yield(agents.Event{}, err)
				return
			}
			ev := agents.Event{ToolCall: &a.ToolCalls[i]}
			if i == len(a.ToolCalls)-1 {
				ev.FinishReason = "tool_calls"
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
