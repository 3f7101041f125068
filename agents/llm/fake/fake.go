// Package fake is a chat model for tests and benchmarks: it streams a
// configured reply word by word, taking a configured time to the first token
// and a configured pace for the rest, like a hosted model would.
//
// It checks what it is asked: the request must end with a non-empty user
// message, and, when Config.Expect is set, that message must be the expected
// text (so a benchmark proves the recognizer's transcript reached the
// model).
package fake

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// ErrUnexpected is returned (wrapped) when the user's message is not
// Config.Expect.
var ErrUnexpected = errors.New("llm/fake: unexpected user message")

// DefaultReply is the answer when Config.Reply is empty.
const DefaultReply = "Sure. It is sunny and warm today, with a light breeze from the west."

// Config sets what the model says and how fast. The zero value streams
// DefaultReply instantly.
type Config struct {
	// Reply is the answer to every request (default DefaultReply).
	Reply string
	// FirstToken is the time from the call to the first token (default 0).
	FirstToken time.Duration
	// TokensPerSecond paces the tokens after the first (default 0: no
	// pause).
	TokensPerSecond float64
	// Expect, if set, is the user message every request must end with
	// (compared case-insensitively, ignoring surrounding space).
	Expect string
}

// Model is a fake agents.ChatModel. It is safe for concurrent use.
type Model struct {
	cfg    Config
	tokens []string

	calls, completed, cancelled atomic.Int64
}

var _ agents.ChatModel = (*Model)(nil)

// New returns a model configured by cfg.
func New(cfg Config) *Model {
	if cfg.Reply == "" {
		cfg.Reply = DefaultReply
	}
	return &Model{cfg: cfg, tokens: Tokens(cfg.Reply)}
}

// Tokens splits text the way Model streams it: words with the whitespace
// that follows them.
func Tokens(text string) []string {
	return strings.SplitAfter(text, " ")
}

// Provider implements agents.ModelInfo.
func (m *Model) Provider() string { return "fake" }

// Model implements agents.ModelInfo.
func (m *Model) Model() string { return "fake" }

// Stats counts the model's calls.
type Stats struct {
	Calls     int64 // Stream calls
	Completed int64 // answers streamed to the end
	Cancelled int64 // answers cut off by their context
}

// Stats returns the counters so far.
func (m *Model) Stats() Stats {
	return Stats{Calls: m.calls.Load(), Completed: m.completed.Load(), Cancelled: m.cancelled.Load()}
}

// Stream implements agents.ChatModel. Token i comes FirstToken + i/TokensPerSecond
// after the call; the last event carries Usage and FinishReason "stop". The
// sequence ends with ctx's error as soon as ctx ends.
func (m *Model) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		m.calls.Add(1)
		if err := m.check(req); err != nil {
			yield(agents.Event{}, err)
			return
		}
		start := time.Now()
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for i, tok := range m.tokens {
			d := m.cfg.FirstToken
			if i > 0 && m.cfg.TokensPerSecond > 0 {
				d += time.Duration(float64(i) / m.cfg.TokensPerSecond * float64(time.Second))
			}
			if wait := time.Until(start.Add(d)); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
			if err := ctx.Err(); err != nil {
				m.cancelled.Add(1)
				yield(agents.Event{}, err)
				return
			}
			ev := agents.Event{Text: tok}
			if i == len(m.tokens)-1 {
				ev.Usage = &agents.Usage{InputTokens: inputTokens(req), OutputTokens: len(m.tokens)}
				ev.FinishReason = "stop"
			}
			if !yield(ev, nil) {
				return
			}
		}
		m.completed.Add(1)
	}
}

func (m *Model) check(req agents.Request) error {
	if len(req.Messages) == 0 {
		return agents.ErrEmptyRequest
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role != agents.RoleUser || strings.TrimSpace(last.Content) == "" {
		return fmt.Errorf("llm/fake: last message is %s %q, want a user message: %w", last.Role, last.Content, agents.ErrEmptyRequest)
	}
	if m.cfg.Expect != "" && !strings.EqualFold(strings.TrimSpace(last.Content), strings.TrimSpace(m.cfg.Expect)) {
		return fmt.Errorf("%w: %q, want %q", ErrUnexpected, last.Content, m.cfg.Expect)
	}
	return nil
}

func inputTokens(req agents.Request) int {
	n := len(strings.Fields(req.System))
	for _, msg := range req.Messages {
		n += len(strings.Fields(msg.Content))
	}
	return n
}
