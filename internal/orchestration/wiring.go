package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/bus"
	"github.com/voiced-dev/voiced/agents/webhook"
	"github.com/voiced-dev/voiced/internal/config"
)

// This file turns the configuration's handoff options, event-bus topics
// and audit hooks (internal/config/orchestration.go) into the library's
// HandoffSpecs, a per-session bus and agents.Hooks.

// handoffSpec makes the handoff from an agent to target with the options
// of [agents.handoff.TARGET].
func (t *team) handoffSpec(target string, opts config.HandoffOptions) (agents.HandoffSpec, error) {
	h := agents.HandoffSpec{Target: t.runnable[target], Description: opts.Description}
	if h.Description == "" {
		desc := t.roles[target]
		if desc == "" {
			desc = "the " + target + " agent"
		}
		h.Description = "Transfer the conversation to " + desc + "."
	}
	type match struct {
		key string
		re  *regexp.Regexp
	}
	var when []match
	for _, k := range slices.Sorted(maps.Keys(opts.WhenMetadata)) {
		re, err := regexp.Compile("(?i)" + opts.WhenMetadata[k])
		if err != nil {
			return h, fmt.Errorf("%w: handoff to %s: when_metadata %s: %v", ErrConfig, target, k, err)
		}
		when = append(when, match{k, re})
	}
	if len(opts.AfterTools) > 0 || len(when) > 0 {
		after := slices.Clone(opts.AfterTools)
		h.IsEnabled = func(ctx context.Context) bool {
			info, ok := agents.SessionFromContext(ctx)
			if !ok || info.State == nil {
				return false
			}
			for _, tool := range after {
				if !info.State.ToolRan(tool) {
					return false
				}
			}
			for _, m := range when {
				v, ok := info.State.Get(m.key)
				if !ok || !m.re.MatchString(v) {
					return false
				}
			}
			return true
		}
	}
	if opts.LastMessages > 0 || opts.DropToolMessages {
		last, drop := opts.LastMessages, opts.DropToolMessages
		h.InputFilter = func(in agents.Input) agents.Input {
			if last > 0 {
				in = LastMessages(in, last)
			}
			if drop {
				in = agents.NoToolMessages(in)
			}
			return in
		}
	}
	if opts.CallTool != "" || len(opts.SetMetadata) > 0 {
		var tool agents.Tool
		if opts.CallTool != "" {
			if tool = t.tools[opts.CallTool]; tool == nil {
				return h, fmt.Errorf("%w: handoff to %s: call_tool: unknown tool %q", ErrConfig, target, opts.CallTool)
			}
		}
		args := opts.ToolArgs
		if args == "" {
			args = "{}"
		}
		set := maps.Clone(opts.SetMetadata)
		log := t.log
		h.OnHandoff = func(ctx context.Context, from, to string) error {
			if tool != nil {
				out, err := tool.Call(ctx, json.RawMessage(args))
				if err != nil {
					return fmt.Errorf("%s failed: %w", tool.Spec().Name, err)
				}
				log.DebugContext(ctx, "handoff action", "from", from, "to", to, "tool", tool.Spec().Name, "result", out)
			}
			if info, ok := agents.SessionFromContext(ctx); ok && info.State != nil {
				for k, v := range set {
					info.State.Set(k, v)
				}
			}
			return nil
		}
	}
	return h, nil
}

// LastMessages keeps the last n messages of in before the transfer that
// ends it (an assistant message calling a transfer_to_ tool and that
// call's result), and the transfer. A tool result whose call was cut off
// is dropped too.
func LastMessages(in agents.Input, n int) agents.Input {
	msgs := in.Messages
	tail := 0
	if k := len(msgs); k >= 2 && msgs[k-1].Role == agents.RoleTool && strings.HasPrefix(msgs[k-1].Name, agents.HandoffPrefix) {
		tail = 1
		if m := msgs[k-2]; m.Role == agents.RoleAssistant && len(m.ToolCalls) > 0 {
			tail = 2
		}
	}
	body, transfer := msgs[:len(msgs)-tail], msgs[len(msgs)-tail:]
	if len(body) > n {
		body = body[len(body)-n:]
	}
	for len(body) > 0 && body[0].Role == agents.RoleTool {
		body = body[1:]
	}
	out := make([]agents.Message, 0, len(body)+len(transfer))
	out = append(append(out, body...), transfer...)
	return agents.Input{Messages: out}
}

// PublishTool is the name of the tool an agent that publishes gets.
const PublishTool = "publish_event"

// subscription is one agent's [[agents.subscribe]].
type subscription struct {
	agent string
	config.Subscription
}

// hub wires the agents of every session to that session's event bus.
type hub struct {
	log  *slog.Logger
	subs []subscription
	// runnable returns the agent a background subscription runs.
	runnable func(name string) agents.Runnable
}

// notice is an event's Data: what an agent published.
type notice struct {
	From, Text string
}

// sessionBus is one session's bus and the queues of its context
// subscriptions.
type sessionBus struct {
	bus *bus.Bus
	// queues hold, per agent, the events of its context subscriptions
	// until it next runs.
	queues map[string][]<-chan bus.Event
}

type busKey struct{}

// session returns the session's bus, made on first use: a context
// subscription is a channel its agent drains when it runs; a background
// one is a goroutine of the session that runs its agent on each event.
func (h *hub) session(info agents.SessionInfo) *sessionBus {
	if info.State == nil {
		return nil
	}
	made := false
	v := info.State.Value(busKey{}, func() any {
		made = true
		sb := &sessionBus{bus: bus.New(bus.Config{Logger: h.log}), queues: map[string][]<-chan bus.Event{}}
		for _, s := range h.subs {
			ch, _, err := sb.bus.SubscribeChan(s.Topic, bus.SubscribeOptions{Buffer: 32, Policy: bus.Drop})
			if err != nil {
				h.log.Warn("bus: subscription refused", "agent", s.agent, "topic", s.Topic, "err", err)
				continue
			}
			if s.Action == config.ActionBackground {
				if info.Go == nil {
					h.log.Warn("bus: this session cannot run background subscriptions", "agent", s.agent, "topic", s.Topic)
					continue
				}
				s := s
				info.Go(func(ctx context.Context) { h.background(ctx, info, s, ch) })
				continue
			}
			sb.queues[s.agent] = append(sb.queues[s.agent], ch)
		}
		return sb
	})
	sb, _ := v.(*sessionBus)
	if made && sb != nil {
		info.State.OnClose(func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the session is over: stop at once
			sb.bus.Close(ctx)
		})
	}
	return sb
}

// background runs s.agent on each event of ch until the session ends, and
// says its answer if s speaks.
func (h *hub) background(ctx context.Context, info agents.SessionInfo, s subscription, ch <-chan bus.Event) {
	r := h.runnable(s.agent)
	for {
		var ev bus.Event
		var ok bool
		select {
		case ev, ok = <-ch:
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		in := agents.Input{Messages: []agents.Message{{Role: agents.RoleUser, Content: eventText(ev)}}}
		text, err := agents.Collect(agents.WithSession(ctx, info), r, in)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("bus: background agent failed", "agent", s.agent, "topic", ev.Topic, "err", err)
			}
			continue
		}
		h.log.Debug("bus: background agent answered", "agent", s.agent, "topic", ev.Topic, "speak", s.Speaks())
		if s.Speaks() && info.Say != nil {
			info.Say(text)
		}
	}
}

func eventText(ev bus.Event) string {
	n, _ := ev.Data.(notice)
	return fmt.Sprintf("Event on %s from %s: %s", ev.Topic, n.From, n.Text)
}

// publishTool lets the agent named from publish on topics.
func (h *hub) publishTool(from string, topics []string) agents.Tool {
	return &publishTool{hub: h, from: from, topics: slices.Clone(topics)}
}

type publishTool struct {
	hub    *hub
	from   string
	topics []string
}

func (p *publishTool) Spec() agents.ToolSpec {
	schema, _ := json.Marshal(map[string]any{
		"type": "object",
		"properties": map[string]any{
			"topic":   map[string]any{"type": "string", "enum": p.topics, "description": "The topic to publish on."},
			"message": map[string]any{"type": "string", "description": "What happened, for the agents that follow the topic."},
		},
		"required":             []string{"topic", "message"},
		"additionalProperties": false,
	})
	return agents.ToolSpec{
		Name:        PublishTool,
		Description: "Tell the other agents that follow a topic about something that happened in this conversation.",
		Parameters:  schema,
	}
}

// Call publishes on the session's bus. Publishing never waits: a
// subscriber whose queue is full misses the event.
func (p *publishTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct {
		Topic   string `json:"topic"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
	}
	if !slices.Contains(p.topics, a.Topic) {
		return "", fmt.Errorf("%w: topic: %q is not one of %s", agents.ErrToolArgs, a.Topic, strings.Join(p.topics, ", "))
	}
	if strings.TrimSpace(a.Message) == "" {
		return "", fmt.Errorf("%w: message: required", agents.ErrToolArgs)
	}
	info, ok := agents.SessionFromContext(ctx)
	sb := (*sessionBus)(nil)
	if ok {
		sb = p.hub.session(info)
	}
	if sb == nil {
		return "", errors.New("no session to publish in")
	}
	if err := sb.bus.Publish(ctx, a.Topic, bus.Event{Data: notice{From: p.from, Text: a.Message}}); err != nil {
		return "", err
	}
	return "Published on " + a.Topic + ".", nil
}

// subscriber runs an agent that has context subscriptions: the events
// queued for it since its last run are added to its input, as system
// messages just before the user's last message.
type subscriber struct {
	agents.Runnable
	hub *hub
}

func (s *subscriber) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	info, ok := agents.SessionFromContext(ctx)
	if !ok {
		return s.Runnable.Run(ctx, in)
	}
	sb := s.hub.session(info)
	if sb == nil {
		return s.Runnable.Run(ctx, in)
	}
	var events []agents.Message
	for _, ch := range sb.queues[s.Name()] {
	drain:
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					break drain
				}
				events = append(events, agents.Message{Role: agents.RoleSystem, Name: "event", Content: eventText(ev)})
			default:
				break drain
			}
		}
	}
	if len(events) == 0 {
		return s.Runnable.Run(ctx, in)
	}
	at := len(in.Messages)
	for i := len(in.Messages) - 1; i >= 0; i-- {
		if in.Messages[i].Role == agents.RoleUser {
			at = i
			break
		}
	}
	msgs := make([]agents.Message, 0, len(in.Messages)+len(events))
	msgs = append(msgs, in.Messages[:at]...)
	msgs = append(msgs, events...)
	msgs = append(msgs, in.Messages[at:]...)
	return s.Runnable.Run(ctx, agents.Input{Messages: msgs})
}

// hooks makes the [[hooks]] endpoints.
func hooks(cfg config.Config, log *slog.Logger) ([]*webhook.Hook, error) {
	var out []*webhook.Hook
	for i, hc := range cfg.Hooks {
		h, err := webhook.New(hc, webhook.Options{Logger: log})
		if err != nil {
			closeHooks(out)
			return nil, fmt.Errorf("%w: hooks[%d]: %v", ErrConfig, i, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// closeHooks sends what the hooks have queued, for at most five seconds.
func closeHooks(hs []*webhook.Hook) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, h := range hs {
		errs = append(errs, h.Close(ctx))
	}
	return errors.Join(errs...)
}
