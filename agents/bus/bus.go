// Package bus is an in-process publish/subscribe event bus, so that agents
// can react to each other without an orchestrator. Subscribers choose
// topics by exact name or by prefix ("orders.*"), get events from a bounded
// queue with a drop or block policy, and can answer requests by correlation
// ID. Agent adapts an agents.Runnable into a subscriber that answers on a
// topic.
package bus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrClosed is returned by Publish, Subscribe and Request after Close.
	ErrClosed = errors.New("bus: closed")
	// ErrPattern is returned by Subscribe for an invalid topic pattern.
	ErrPattern = errors.New("bus: invalid topic pattern")
	// ErrTopic is returned by Publish for an empty topic or one holding a
	// wildcard.
	ErrTopic = errors.New("bus: invalid topic")
	// ErrRemote is returned by Request when the reply reports an error.
	ErrRemote = errors.New("bus: request failed")
)

// Event is one message on the bus. Subscribers share it: they must not
// modify Data.
type Event struct {
	// ID identifies the event (Publish sets a random one if empty).
	ID string
	// CorrelationID links a reply, or a chain of events, to the request
	// that started it.
	CorrelationID string
	// Topic is the topic it was published on (Publish sets it).
	Topic string
	// ReplyTo, if set, is the topic where an answer is expected.
	ReplyTo string
	// Data is the payload: any value for in-process subscribers.
	Data any
	// Error, if set, reports that the request this event answers failed.
	Error string
	// Time is when it was published (Publish sets it if zero).
	Time time.Time
}

// Policy says what Publish does when a subscriber's queue is full.
type Policy uint8

const (
	// Block makes Publish wait for room (until its ctx is done).
	Block Policy = iota
	// Drop makes Publish drop the event for that subscriber (counted in
	// Dropped).
	Drop
)

// Config configures a Bus. The zero value works.
type Config struct {
	// Buffer is the default queue length of a subscription (default 64).
	Buffer int
	Logger *slog.Logger
	// Now is the clock for Event.Time (default time.Now).
	Now func() time.Time
}

// SubscribeOptions tune one subscription. The zero value uses the bus's
// buffer and the Block policy.
type SubscribeOptions struct {
	Buffer int
	Policy Policy
}

// Handler handles one event. ctx is cancelled when the subscription is
// removed or the bus is closed without time to drain.
type Handler func(ctx context.Context, ev Event)

// Bus routes events from publishers to subscribers. It is safe for
// concurrent use. Each handler subscription owns one goroutine that calls
// its handler for one event at a time, in the order the events were queued
// to it; Close ends them.
//
// # Ordering
//
// Publish first waits until every matching subscription with the Block
// policy has room, and then queues the event to all matching subscriptions
// at once: no other Publish queues an event in between, so no subscriber
// (handler or channel) can see the event, and react to it, before it is
// queued everywhere. Hence causally related events reach every subscriber
// in order: an event published after Publish returned, or published by a
// subscriber that saw an earlier event, is queued after that event at every
// subscription they share. Events from concurrent, unrelated Publish calls
// reach different subscriptions in one order too (queueing is serialized),
// though a Drop subscription may miss some of them.
type Bus struct {
	cfg     Config
	log     *slog.Logger
	dropped atomic.Uint64

	mu     sync.RWMutex
	subs   []*sub // in subscription order
	closed bool

	// queue serializes queueing events (and closing queues): Publish holds
	// it only to move an event into queues that have room, never to wait.
	queue  sync.Mutex
	wg     sync.WaitGroup // handler goroutines
	ctx    context.Context
	cancel context.CancelFunc // cancels handlers
}

// New returns a bus.
func New(cfg Config) *Bus {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{cfg: cfg, log: log, ctx: ctx, cancel: cancel}
}

type sub struct {
	pattern string
	prefix  bool // pattern ends in ".*" (or is "*"): match by prefix
	policy  Policy
	// handled is set for Subscribe: the bus's goroutine receives from ch
	// and reports each receive (madeRoom). A SubscribeChan receiver does
	// not, so publishers waiting for room in ch check it again over time.
	handled bool

	ch    chan Event // sent to and closed under Bus.queue
	done  chan struct{}
	ended bool // guarded by Bus.queue; done is closed when it is set

	roomMu sync.Mutex
	room   chan struct{} // closed when a receive makes room; nil if nobody waits
}

// pollRoom bounds how long a publisher waiting for room in a channel
// subscription goes without checking it again.
const pollRoom = 5 * time.Millisecond

func (s *sub) matches(topic string) bool {
	if s.prefix {
		return strings.HasPrefix(topic, s.pattern)
	}
	return topic == s.pattern
}

// end stops deliveries and closes the queue. Called with Bus.queue held.
func (s *sub) end() {
	if !s.ended {
		s.ended = true
		close(s.done)
		close(s.ch)
	}
}

// hasRoom reports whether a send to ch would not block, or the
// subscription has ended (there is nothing to wait for). It is exact only
// under Bus.queue, the lock every sender holds.
func (s *sub) hasRoom() bool {
	return len(s.ch) < cap(s.ch)
}

// madeRoom wakes the publishers waiting for room; the subscription's
// goroutine calls it after each receive.
func (s *sub) madeRoom() {
	s.roomMu.Lock()
	if s.room != nil {
		close(s.room)
		s.room = nil
	}
	s.roomMu.Unlock()
}

// waitRoom returns once s has room or has ended, or with ctx's cause.
// Room may be taken again before the caller queues: it checks again under
// Bus.queue.
func (s *sub) waitRoom(ctx context.Context) error {
	wait := 50 * time.Microsecond
	for {
		s.roomMu.Lock()
		if s.hasRoom() {
			s.roomMu.Unlock()
			return nil
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.roomMu.Unlock()
		var poll <-chan time.Time
		var t *time.Timer
		if !s.handled {
			t = time.NewTimer(wait)
			poll = t.C
			wait = min(2*wait, pollRoom)
		}
		var err error
		select {
		case <-room:
		case <-poll:
		case <-s.done:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return err
		}
		select {
		case <-s.done:
			return nil
		default:
		}
	}
}

// parsePattern checks a topic pattern: an exact topic, "*" (every topic) or
// "prefix.*" (every topic that starts with "prefix.").
func parsePattern(p string) (prefix string, isPrefix bool, err error) {
	switch {
	case p == "*":
		return "", true, nil
	case p == "":
		return "", false, fmt.Errorf("%w: empty", ErrPattern)
	case strings.HasSuffix(p, ".*"):
		base := strings.TrimSuffix(p, "*")
		if base == "." || strings.Contains(base, "*") {
			return "", false, fmt.Errorf("%w: %q", ErrPattern, p)
		}
		return base, true, nil
	case strings.Contains(p, "*"):
		return "", false, fmt.Errorf("%w: %q: a wildcard may only end the pattern, as \".*\"", ErrPattern, p)
	}
	return p, false, nil
}

func (b *Bus) add(pattern string, opts SubscribeOptions, handled bool) (*sub, error) {
	p, isPrefix, err := parsePattern(pattern)
	if err != nil {
		return nil, err
	}
	n := opts.Buffer
	if n <= 0 {
		n = b.cfg.Buffer
	}
	s := &sub{pattern: p, prefix: isPrefix, policy: opts.Policy, handled: handled, ch: make(chan Event, n), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.subs = append(b.subs, s)
	return s, nil
}

func (b *Bus) remove(s *sub) {
	b.mu.Lock()
	if i := slices.Index(b.subs, s); i >= 0 {
		b.subs = slices.Delete(b.subs, i, i+1)
	}
	b.mu.Unlock()
	b.queue.Lock()
	s.end()
	b.queue.Unlock()
}

// Subscribe calls h for each event whose topic matches pattern: an exact
// topic, "*" for every topic, or "prefix.*" for every topic starting with
// "prefix.". Events wait in a queue of opts.Buffer; when it is full, Publish
// blocks or drops as opts.Policy says. The returned function removes the
// subscription: events still queued are discarded, h's ctx is cancelled,
// and it returns without waiting for h (so h may call it).
func (b *Bus) Subscribe(pattern string, h Handler, opts SubscribeOptions) (unsubscribe func(), err error) {
	s, err := b.add(pattern, opts, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(b.ctx)
	b.wg.Go(func() {
		defer cancel()
		for ev := range s.ch {
			s.madeRoom()
			select {
			case <-ctx.Done():
				continue // removed: discard what is left
			default:
			}
			h(ctx, ev)
		}
	})
	return func() {
		cancel()
		b.remove(s)
	}, nil
}

// SubscribeChan is Subscribe delivering to a channel, which is the queue:
// it has opts.Buffer room and is closed when the subscription is removed or
// the bus is closed. The caller must keep receiving (or unsubscribe) for
// Block publishers to go on; a publisher waiting for room in the channel
// notices a receive within a few milliseconds.
func (b *Bus) SubscribeChan(pattern string, opts SubscribeOptions) (<-chan Event, func(), error) {
	s, err := b.add(pattern, opts, false)
	if err != nil {
		return nil, nil, err
	}
	return s.ch, func() { b.remove(s) }, nil
}

// Publish sends ev on topic to every matching subscription, setting
// ev.Topic, and ev.ID and ev.Time if they are empty. It waits until every
// matching subscription with the Block policy has room (or has ended), and
// then queues the event to all of them at once (see Bus, Ordering); a
// subscription with the Drop policy whose queue is full misses it. If ctx
// is done first, Publish fails with ctx's cause and no subscription gets
// the event.
func (b *Bus) Publish(ctx context.Context, topic string, ev Event) error {
	if topic == "" || strings.Contains(topic, "*") {
		return fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	ev.Topic = topic
	if ev.ID == "" {
		ev.ID = rand.Text()
	}
	if ev.Time.IsZero() {
		ev.Time = b.cfg.Now()
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	var targets []*sub
	for _, s := range b.subs {
		if s.matches(topic) {
			targets = append(targets, s)
		}
	}
	b.mu.RUnlock()
	for {
		for _, s := range targets {
			if s.policy == Block {
				if err := s.waitRoom(ctx); err != nil {
					return fmt.Errorf("bus: publish %s: %w", topic, err)
				}
			}
		}
		if b.queueTo(targets, ev) {
			return nil
		}
		// Another publisher took the room of a Block queue: wait again.
	}
}

// queueTo sends ev to every target that has not ended, unless a Block one
// has no room; it reports whether it did.
func (b *Bus) queueTo(targets []*sub, ev Event) bool {
	b.queue.Lock()
	defer b.queue.Unlock()
	for _, s := range targets {
		if s.policy == Block && !s.ended && !s.hasRoom() {
			return false
		}
	}
	for _, s := range targets {
		if s.ended {
			continue
		}
		if s.hasRoom() {
			s.ch <- ev // cannot block: every sender holds b.queue
			continue
		}
		b.dropped.Add(1)
		b.log.Debug("bus: queue full, event dropped", "topic", ev.Topic, "pattern", s.pattern, "id", ev.ID)
	}
	return true
}

// Dropped returns how many deliveries the Drop policy has dropped.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Request publishes data on topic with a new correlation ID and a private
// ReplyTo topic, and returns the first reply carrying that correlation ID
// (see Reply). It fails with ctx's cause if none comes before ctx is done,
// and with ErrRemote if the reply's Error is set.
func (b *Bus) Request(ctx context.Context, topic string, data any) (Event, error) {
	id := rand.Text()
	inbox := "_inbox." + id
	ch, unsubscribe, err := b.SubscribeChan(inbox, SubscribeOptions{Buffer: 1, Policy: Drop})
	if err != nil {
		return Event{}, err
	}
	defer unsubscribe()
	if err := b.Publish(ctx, topic, Event{ID: id, CorrelationID: id, ReplyTo: inbox, Data: data}); err != nil {
		return Event{}, err
	}
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return Event{}, ErrClosed
			}
			if ev.CorrelationID != id {
				continue
			}
			if ev.Error != "" {
				return ev, fmt.Errorf("%w: %s", ErrRemote, ev.Error)
			}
			return ev, nil
		case <-ctx.Done():
			return Event{}, context.Cause(ctx)
		}
	}
}

// Reply publishes answer on req.ReplyTo with req's correlation ID (its ID
// if it has none). answer's Data and Error are kept. It does nothing if req
// has no ReplyTo.
func (b *Bus) Reply(ctx context.Context, req Event, answer Event) error {
	if req.ReplyTo == "" {
		return nil
	}
	answer.ID = ""
	answer.CorrelationID = correlation(req)
	return b.Publish(ctx, req.ReplyTo, answer)
}

func correlation(ev Event) string {
	if ev.CorrelationID != "" {
		return ev.CorrelationID
	}
	return ev.ID
}

// Close stops the bus: Publish, Subscribe and Request fail with ErrClosed
// from now on. Handlers go on with the events already queued until they are
// drained or ctx is done; then their contexts are cancelled and the rest is
// discarded. Channel subscriptions are closed (their buffered events can
// still be received). Close waits for every handler goroutine to end and
// returns ctx's cause if the drain was cut short. It is idempotent.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	b.queue.Lock()
	for _, s := range subs {
		s.end()
	}
	b.queue.Unlock()
	drained := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-drained
		return context.Cause(ctx)
	}
}
