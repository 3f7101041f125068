package workflow

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/agents"
)

// Route is one choice of a Router.
type Route struct {
	Name        string // what the model answers to choose it
	Description string // when it fits, shown to the model
	Target      agents.Runnable
}

// RouterConfig configures a Router. The zero value works.
type RouterConfig struct {
	// System, if set, replaces the opening of the routing prompt; the list
	// of routes and the answer format are always appended.
	System string
	// Fallback names the route taken when the model's answer names none.
	// Empty: such a run fails with ErrNoRoute.
	Fallback string
	Logger   *slog.Logger
}

type router struct {
	name   string
	model  agents.ChatModel
	routes []Route
	names  []string
	system string
	fall   int // index of the fallback route, -1 if none
	log    *slog.Logger
}

// Router asks model which route fits the conversation, then runs that
// route's target on the same input; the target's text, streamed as it is
// written, is the answer. The routing request has the router's prompt
// (listing each route as "- name: description") as System and the input's
// conversation as Messages, so its last message is the user's. The model's
// answer is matched with MatchRoute; when it names no route the fallback
// route is taken, if configured. The choice is reported as an EventHandoff
// from the router to the route's target.
func Router(name string, model agents.ChatModel, cfg RouterConfig, routes ...Route) (agents.Runnable, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: router %q has no model", ErrConfig, name)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("%w: router %q has no routes", ErrConfig, name)
	}
	r := &router{name: name, model: model, fall: -1, log: discardLogger(cfg.Logger)}
	seen := map[string]bool{}
	for i, rt := range routes {
		if rt.Name == "" || rt.Target == nil {
			return nil, fmt.Errorf("%w: router %q: route %d needs a name and a target", ErrConfig, name, i)
		}
		if seen[strings.ToLower(rt.Name)] {
			return nil, fmt.Errorf("%w: router %q: duplicate route %q", ErrConfig, name, rt.Name)
		}
		seen[strings.ToLower(rt.Name)] = true
		r.routes = append(r.routes, rt)
		r.names = append(r.names, rt.Name)
		if rt.Name == cfg.Fallback {
			r.fall = i
		}
	}
	if cfg.Fallback != "" && r.fall < 0 {
		return nil, fmt.Errorf("%w: router %q: fallback %q is not a route", ErrConfig, name, cfg.Fallback)
	}
	sys := cfg.System
	if sys == "" {
		sys = "You are a router. Choose the one route that best fits the user's last message."
	}
	var b strings.Builder
	b.WriteString(sys)
	b.WriteString("\n\nRoutes:\n")
	for _, rt := range r.routes {
		b.WriteString("- ")
		b.WriteString(rt.Name)
		if rt.Description != "" {
			b.WriteString(": ")
			b.WriteString(rt.Description)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nAnswer with the route's name only.")
	r.system = b.String()
	return r, nil
}

func (r *router) Name() string { return r.name }

func (r *router) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, r.name, func(ctx context.Context, emit emitFunc) error {
		answer, err := agents.Generate(ctx, r.model, agents.Request{System: r.system, Messages: in.Messages, MaxTokens: 32})
		if err != nil {
			return fmt.Errorf("workflow: %s: routing: %w", r.name, err)
		}
		i := MatchRoute(answer, r.names)
		if i < 0 {
			if r.fall < 0 {
				return fmt.Errorf("%w: %s: model answered %q", ErrNoRoute, r.name, answer)
			}
			r.log.Warn("router: answer names no route, taking the fallback", "router", r.name, "answer", answer, "fallback", r.names[r.fall])
			i = r.fall
		}
		target := r.routes[i].Target
		if !emit(agents.AgentEvent{Agent: r.name, Kind: agents.EventHandoff, Handoff: &agents.Handoff{From: r.name, To: target.Name()}}) {
			return errStopped
		}
		if _, err := runMember(ctx, target, in, true, emit); err != nil {
			return memberError(ctx, r.name, target.Name(), err)
		}
		return nil
	})
}

// MatchRoute returns the index in names of the route that a model's answer
// names, or -1. It tries, in order: the answer (trimmed of spaces, quotes,
// backticks, asterisks and trailing punctuation) equal to a name; the same
// ignoring case; then names found in the answer as whole words, ignoring
// case, taking the one that appears first (ties go to the longer name).
func MatchRoute(answer string, names []string) int {
	t := strings.Trim(answer, " \t\r\n\"'`*.,:;!?")
	for i, n := range names {
		if t == n {
			return i
		}
	}
	for i, n := range names {
		if strings.EqualFold(t, n) {
			return i
		}
	}
	lower := strings.ToLower(answer)
	best, bestAt := -1, len(lower)+1
	for i, n := range names {
		at := wordIndex(lower, strings.ToLower(n))
		if at < 0 {
			continue
		}
		if at < bestAt || (at == bestAt && len(n) > len(names[best])) {
			best, bestAt = i, at
		}
	}
	return best
}

// wordIndex returns the first index of word in s where it is not part of a
// longer word, or -1.
func wordIndex(s, word string) int {
	if word == "" {
		return -1
	}
	for from := 0; from <= len(s)-len(word); {
		i := strings.Index(s[from:], word)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(word)
		if !wordByteBefore(s, i) && !wordByteAt(s, end) {
			return i
		}
		from = i + 1
	}
	return -1
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-'
}

func wordByteBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isWordRune(r)
}

func wordByteAt(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}
