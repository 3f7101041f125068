package bus_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/bus"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

func closeBus(t *testing.T, b *bus.Bus) {
	t.Helper()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTopicMatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		patterns := []string{"orders.created", "orders.*", "orders.eu.*", "*", "payments.*"}
		chans := make([]<-chan bus.Event, len(patterns))
		for i, p := range patterns {
			ch, _, err := b.SubscribeChan(p, bus.SubscribeOptions{Buffer: 16})
			if err != nil {
				t.Fatal(err)
			}
			chans[i] = ch
		}
		for _, topic := range []string{"orders.created", "orders.eu.paid", "orders", "ordersx.y", "payments.done"} {
			if err := b.Publish(context.Background(), topic, bus.Event{Data: topic}); err != nil {
				t.Fatal(err)
			}
		}
		closeBus(t, b)
		want := [][]string{
			{"orders.created"},
			{"orders.created", "orders.eu.paid"},
			{"orders.eu.paid"},
			{"orders.created", "orders.eu.paid", "orders", "ordersx.y", "payments.done"},
			{"payments.done"},
		}
		for i, ch := range chans {
			var got []string
			for ev := range ch { // closed by Close
				if ev.Topic != ev.Data || ev.ID == "" || ev.Time.IsZero() {
					t.Errorf("event %+v", ev)
				}
				got = append(got, ev.Topic)
			}
			if strings.Join(got, ",") != strings.Join(want[i], ",") {
				t.Errorf("%s got %v, want %v", patterns[i], got, want[i])
			}
		}
	})
}

func TestInvalidPatternsAndTopics(t *testing.T) {
	b := bus.New(bus.Config{})
	defer closeBus(t, b)
	for _, p := range []string{"", "a*", "*.b", "a.*.c", ".*", "a.**"} {
		if _, _, err := b.SubscribeChan(p, bus.SubscribeOptions{}); !errors.Is(err, bus.ErrPattern) {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
	for _, topic := range []string{"", "a.*"} {
		if err := b.Publish(context.Background(), topic, bus.Event{}); !errors.Is(err, bus.ErrTopic) {
			t.Errorf("topic %q: %v", topic, err)
		}
	}
}

func TestDropPolicy(t *testing.T) {
	b := bus.New(bus.Config{})
	ch, unsubscribe, err := b.SubscribeChan("t", bus.SubscribeOptions{Buffer: 2, Policy: bus.Drop})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := b.Publish(context.Background(), "t", bus.Event{Data: i}); err != nil {
			t.Fatal(err)
		}
	}
	if b.Dropped() != 3 {
		t.Errorf("dropped %d, want 3", b.Dropped())
	}
	unsubscribe()
	var got []any
	for ev := range ch {
		got = append(got, ev.Data)
	}
	if len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("kept %v, want the first two", got)
	}
	closeBus(t, b)
}

func TestBlockPolicyWaitsUnderContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		ch, _, _ := b.SubscribeChan("t", bus.SubscribeOptions{Buffer: 1})
		if err := b.Publish(context.Background(), "t", bus.Event{Data: 1}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		err := b.Publish(ctx, "t", bus.Event{Data: 2})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("blocked publish: %v after %v", err, time.Since(start))
		}
		// A receiver makes room: the blocked publisher goes on.
		done := make(chan error)
		go func() { done <- b.Publish(context.Background(), "t", bus.Event{Data: 3}) }()
		synctest.Wait()
		if (<-ch).Data != 1 {
			t.Fatal("first event lost")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if (<-ch).Data != 3 || b.Dropped() != 0 {
			t.Fatal("blocked event lost")
		}
		closeBus(t, b)
	})
}

func TestRequestReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		var seen []bus.Event
		_, err := b.Subscribe("math.double", func(ctx context.Context, ev bus.Event) {
			seen = append(seen, ev)
			if err := b.Reply(ctx, ev, bus.Event{Data: 2 * ev.Data.(int)}); err != nil {
				t.Error(err)
			}
		}, bus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := b.Request(context.Background(), "math.double", 21)
		if err != nil {
			t.Fatal(err)
		}
		if reply.Data != 42 || reply.CorrelationID != seen[0].ID || seen[0].CorrelationID != seen[0].ID || !strings.HasPrefix(seen[0].ReplyTo, "_inbox.") {
			t.Errorf("reply %+v to %+v", reply, seen[0])
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := b.Request(ctx, "nobody.listens", 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("unanswered request: %v", err)
		}
		closeBus(t, b)
		if _, err := b.Request(context.Background(), "math.double", 1); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	})
}

func TestCloseDrainsHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		gate := make(chan struct{})
		var handled []int
		b.Subscribe("jobs", func(ctx context.Context, ev bus.Event) {
			<-gate
			handled = append(handled, ev.Data.(int))
		}, bus.SubscribeOptions{Buffer: 10})
		for i := range 10 {
			b.Publish(context.Background(), "jobs", bus.Event{Data: i})
		}
		closed := make(chan error)
		go func() { closed <- b.Close(context.Background()) }()
		synctest.Wait()
		if err := b.Publish(context.Background(), "jobs", bus.Event{}); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("publish while closing: %v", err)
		}
		select {
		case <-closed:
			t.Fatal("Close returned before the handler drained")
		default:
		}
		close(gate)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if len(handled) != 10 || handled[9] != 9 {
			t.Errorf("handled %v", handled)
		}
		if _, err := b.Subscribe("x", func(context.Context, bus.Event) {}, bus.SubscribeOptions{}); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("subscribe after close: %v", err)
		}
	})
}

func TestCloseCutShortCancelsHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		var handled int
		b.Subscribe("slow", func(ctx context.Context, ev bus.Event) {
			select {
			case <-time.After(time.Hour):
				handled++
			case <-ctx.Done():
			}
		}, bus.SubscribeOptions{})
		for range 3 {
			b.Publish(context.Background(), "slow", bus.Event{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
		if handled != 1 {
			t.Errorf("handled %d before the deadline, want 1", handled)
		}
	})
}

func TestUnsubscribeFromHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		var n int
		var unsubscribe func()
		unsubscribe, _ = b.Subscribe("once", func(ctx context.Context, ev bus.Event) {
			n++
			unsubscribe()
		}, bus.SubscribeOptions{})
		for range 3 {
			b.Publish(context.Background(), "once", bus.Event{})
		}
		synctest.Wait()
		if n != 1 {
			t.Errorf("handled %d events after unsubscribing on the first", n)
		}
		closeBus(t, b)
	})
}

func TestConcurrentPublishers(t *testing.T) {
	b := bus.New(bus.Config{})
	var mu sync.Mutex
	count := map[string]int{}
	b.Subscribe("load.*", func(ctx context.Context, ev bus.Event) {
		mu.Lock()
		count[ev.Topic]++
		mu.Unlock()
	}, bus.SubscribeOptions{Buffer: 4})
	var wg sync.WaitGroup
	for _, topic := range []string{"load.a", "load.b", "load.c", "load.d"} {
		wg.Go(func() {
			for range 200 {
				if err := b.Publish(context.Background(), topic, bus.Event{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	closeBus(t, b)
	for _, topic := range []string{"load.a", "load.b", "load.c", "load.d"} {
		if count[topic] != 200 {
			t.Errorf("%s: %d events", topic, count[topic])
		}
	}
}

// modelAgent is a minimal Runnable that answers with a scripted model and
// records its inputs.
type modelAgent struct {
	name  string
	model agents.ChatModel
	mu    sync.Mutex
	seen  []string
}

func (a *modelAgent) Name() string { return a.name }

func (a *modelAgent) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		a.mu.Lock()
		a.seen = append(a.seen, in.Text())
		a.mu.Unlock()
		for ev, err := range a.model.Stream(ctx, agents.Request{Messages: in.Messages}) {
			if err != nil {
				yield(agents.AgentEvent{}, err)
				return
			}
			if !yield(agents.AgentEvent{Agent: a.name, Kind: agents.EventText, Text: ev.Text}, nil) {
				return
			}
		}
	}
}

func newModelAgent(t *testing.T, name string, rules ...scripted.Rule) *modelAgent {
	m, err := scripted.New(scripted.Config{Rules: rules, Fallback: "no rule"})
	if err != nil {
		t.Fatal(err)
	}
	return &modelAgent{name: name, model: m}
}

func TestAgentsChainedThroughTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		translator := newModelAgent(t, "translator", scripted.Rule{Match: `^bonjour (.*)$`, Reply: "hello $1"})
		summarizer := newModelAgent(t, "summarizer", scripted.Rule{Match: `^hello (\w+)`, Reply: "Someone greets $1."})
		if _, err := bus.Agent(b, translator, "text.french", "text.english", bus.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
		stop, err := bus.Agent(b, summarizer, "text.english", "", bus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		watch, _, _ := b.SubscribeChan("text.*", bus.SubscribeOptions{Buffer: 8})

		reply, err := b.Request(context.Background(), "text.french", "bonjour Marie")
		if err != nil {
			t.Fatal(err)
		}
		if reply.Data != "Someone greets Marie." {
			t.Errorf("reply %+v", reply)
		}
		if translator.seen[0] != "bonjour Marie" || summarizer.seen[0] != "hello Marie" {
			t.Errorf("inputs: translator %q, summarizer %q", translator.seen, summarizer.seen)
		}
		req, mid := <-watch, <-watch
		if req.Topic != "text.french" || mid.Topic != "text.english" || mid.Data != "hello Marie" ||
			mid.CorrelationID != req.ID || reply.CorrelationID != req.ID {
			t.Errorf("chain events %+v then %+v, reply %+v", req, mid, reply)
		}

		if _, err := b.Request(context.Background(), "text.english", 42); !errors.Is(err, bus.ErrRemote) || !strings.Contains(err.Error(), "summarizer") {
			t.Errorf("bad data: %v", err)
		}

		stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := b.Request(ctx, "text.english", "hello Ada"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stopped agent answered: %v", err)
		}
		closeBus(t, b)
	})
}

func BenchmarkPublish(b *testing.B) {
	bs := bus.New(bus.Config{})
	for _, p := range []string{"orders.*", "orders.created", "payments.*"} {
		bs.Subscribe(p, func(context.Context, bus.Event) {}, bus.SubscribeOptions{Buffer: 1024})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bs.Publish(ctx, "orders.created", bus.Event{ID: "x", Data: 1}); err != nil {
			b.Fatal(err)
		}
	}
	bs.Close(ctx)
}

// TestEventQueuedEverywhereBeforeAnyHandlerSeesIt checks the ordering
// guarantee: while Publish still waits to queue an event to one matching
// subscription (here a full Block queue), no handler may see it, so an event
// a handler publishes in reaction cannot overtake the original at another
// subscriber. Map order used to decide which subscription came first, so
// the scenario is repeated until either order has surely been tried.
func TestEventQueuedEverywhereBeforeAnyHandlerSeesIt(t *testing.T) {
	for i := range 128 {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			b := bus.New(bus.Config{})
			watch, _, err := b.SubscribeChan("*", bus.SubscribeOptions{Buffer: 1})
			if err != nil {
				t.Fatal(err)
			}
			var seen []string // written by the reactor's goroutine, read after synctest.Wait
			if _, err := b.Subscribe("text.french", func(ctx context.Context, ev bus.Event) {
				seen = append(seen, ev.Data.(string))
				if err := b.Publish(ctx, "text.english", bus.Event{Data: "hello"}); err != nil {
					t.Errorf("republish: %v", err)
				}
			}, bus.SubscribeOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, "other", bus.Event{Data: "filler"}); err != nil { // fills watch
				t.Fatal(err)
			}
			published := make(chan error, 1)
			go func() { published <- b.Publish(ctx, "text.french", bus.Event{Data: "bonjour"}) }()
			synctest.Wait() // Publish is blocked on the full watcher queue
			if len(seen) != 0 {
				t.Errorf("round %d: a handler saw %v before the event was queued to every subscription", i, seen)
			}
			var got []string
			for range 3 {
				got = append(got, (<-watch).Data.(string))
			}
			if err := <-published; err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != "filler,bonjour,hello" {
				t.Errorf("round %d: watcher got %v, want the cause before its effect", i, got)
			}
			closeBus(t, b)
		})
	}
}

// TestPublishIsAllOrNothing checks that a Publish cut short while waiting
// for room queues the event nowhere, and that concurrent publishers queue
// their events to every subscription in the same order.
func TestPublishIsAllOrNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		free, _, _ := b.SubscribeChan("t", bus.SubscribeOptions{Buffer: 8})
		full, _, _ := b.SubscribeChan("t", bus.SubscribeOptions{Buffer: 1})
		if err := b.Publish(context.Background(), "t", bus.Event{Data: 1}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Publish(ctx, "t", bus.Event{Data: 2}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("publish to a full queue: %v", err)
		}
		if ev := <-free; ev.Data != 1 || len(free) != 0 {
			t.Errorf("free queue got %v and %d more; the failed event must reach nobody", ev.Data, len(free))
		}
		<-full

		const publishers, each = 4, 20
		var wg sync.WaitGroup
		for p := range publishers {
			wg.Go(func() {
				for i := range each {
					if err := b.Publish(context.Background(), "t", bus.Event{Data: p*each + i}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		var a, c []any
		for range publishers * each {
			a = append(a, (<-free).Data)
			c = append(c, (<-full).Data)
		}
		wg.Wait()
		if !slices.Equal(a, c) {
			t.Errorf("subscriptions saw different orders:\n%v\n%v", a, c)
		}
		closeBus(t, b)
	})
}

// TestHandlerWakesEveryWaitingPublisher checks that publishers waiting for
// room in a handler's full queue all go on as it drains.
func TestHandlerWakesEveryWaitingPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bus.New(bus.Config{})
		release := make(chan struct{})
		var got []any
		if _, err := b.Subscribe("t", func(_ context.Context, ev bus.Event) {
			<-release
			got = append(got, ev.Data)
		}, bus.SubscribeOptions{Buffer: 1}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				if err := b.Publish(context.Background(), "t", bus.Event{Data: i}); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // one event in the handler, one queued, three publishers waiting
		close(release)
		wg.Wait()
		closeBus(t, b)
		if len(got) != 5 {
			t.Errorf("handled %v, want 5 events", got)
		}
	})
}
