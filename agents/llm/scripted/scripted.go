// Package scripted is a deterministic, offline ChatModel: the first rule
// whose pattern matches the user's last message gives the reply. It lets the
// demo and the tests hold a conversation with no model server.
package scripted

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// Rule maps a pattern to a reply.
type Rule struct {
	// Match is a regular expression (RE2 syntax), matched case-insensitively
	// against the user's last message.
	Match string `toml:"match"`
	// Reply is the answer. $1, ${name} expand the pattern's groups;
	// {previous} expands to the user's message before the last one.
	Reply string `toml:"reply"`
}

// Config configures a Model. The zero value answers every message with the
// default fallback.
type Config struct {
	Rules    []Rule `toml:"rules"`
	Fallback string `toml:"fallback"` // reply when no rule matches
	// TokenDelay is the pause before each streamed word (default 0), to
	// imitate a real model's pace.
	TokenDelay time.Duration `toml:"token_delay"`
	// FirstTokenDelay is the pause before the first word (default 0).
	FirstTokenDelay time.Duration `toml:"first_token_delay"`
}

// DefaultFallback is the reply when no rule matches and Config.Fallback is
// empty.
const DefaultFallback = "I heard you say: $0."

var all = regexp.MustCompile(`(?s).*`)

// ErrBadRule is returned by New for a rule whose pattern does not compile.
var ErrBadRule = errors.New("scripted: bad rule")

// Model is a scripted ChatModel. It is safe for concurrent use.
type Model struct {
	rules    []compiled
	fallback string
	cfg      Config
}

type compiled struct {
	re    *regexp.Regexp
	reply string
}

// New compiles the rules.
func New(cfg Config) (*Model, error) {
	m := &Model{fallback: cfg.Fallback, cfg: cfg}
	if m.fallback == "" {
		m.fallback = DefaultFallback
	}
	for i, r := range cfg.Rules {
		re, err := regexp.Compile("(?i)" + r.Match)
		if err != nil {
			return nil, fmt.Errorf("%w %d (%q): %v", ErrBadRule, i, r.Match, err)
		}
		m.rules = append(m.rules, compiled{re: re, reply: r.Reply})
	}
	return m, nil
}

// Reply returns the full answer to req.
func (m *Model) Reply(req agents.Request) (string, error) {
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
		return "", agents.ErrEmptyRequest
	}
	last = strings.TrimSpace(last)
	if previous == "" {
		previous = "nothing yet"
	}
	for _, r := range m.rules {
		if idx := r.re.FindStringSubmatchIndex(last); idx != nil {
			out := r.re.ExpandString(nil, r.reply, last, idx)
			return strings.ReplaceAll(string(out), "{previous}", previous), nil
		}
	}
	out := all.ExpandString(nil, m.fallback, last, all.FindStringSubmatchIndex(last))
	return strings.ReplaceAll(string(out), "{previous}", previous), nil
}

// Stream implements agents.ChatModel: the reply word by word.
func (m *Model) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		reply, err := m.Reply(req)
		if err != nil {
			yield(agents.Event{}, err)
			return
		}
		words := strings.SplitAfter(reply, " ")
		for i, w := range words {
			d := m.cfg.TokenDelay
			if i == 0 {
				d = m.cfg.FirstTokenDelay
			}
			if err := sleep(ctx, d); err != nil {
				yield(agents.Event{}, err)
				return
			}
			if !yield(agents.Event{Text: w}, nil) {
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
