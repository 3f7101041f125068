package assembly

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/config"
)

// TestRunRoutesPrunedWhenSessionsEnd: a run's route to its session's Say is
// dropped when the session ends, and the routes' goroutines end with Close.
func TestRunRoutesPrunedWhenSessionsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRunRoutes()
		var mu sync.Mutex
		heard := map[string][]string{}
		session := func(id string) (agents.SessionInfo, func()) {
			done := make(chan struct{})
			return agents.SessionInfo{ID: id, Done: done, Say: func(s string) {
				mu.Lock()
				heard[id] = append(heard[id], s)
				mu.Unlock()
			}}, func() { close(done) }
		}
		a, endA := session("a")
		b, endB := session("b")
		r.add("run1", a)
		r.add("run2", a)
		r.add("run3", b)
		r.add("run4", agents.SessionInfo{ID: "mute"}) // no Say: nothing to route
		if r.len() != 3 {
			t.Fatalf("%d routes, want 3", r.len())
		}
		r.say("run1", "one")
		r.say("run3", "three")
		endA()
		synctest.Wait()
		if r.len() != 1 {
			t.Fatalf("%d routes after session a ended, want 1 (run3)", r.len())
		}
		r.say("run1", "late")
		r.say("run3", "three again")
		mu.Lock()
		if len(heard["a"]) != 1 || heard["a"][0] != "one" || len(heard["b"]) != 2 {
			t.Errorf("heard %v", heard)
		}
		mu.Unlock()
		r.Close() // session b has not ended: its goroutine must end anyway
		if r.len() != 0 {
			t.Errorf("%d routes after Close", r.len())
		}
		r.add("run5", b) // after Close: ignored
		endB()
		if r.len() != 0 {
			t.Errorf("route added after Close")
		}
	})
}

// TestDurableToolRoutesUntilSessionEnds starts the returns workflow through
// the server's tool, as an agent would, and checks that the session's end
// drops the route to it.
func TestDurableToolRoutesUntilSessionEnds(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		d, err := openDurable(config.Durable{Path: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		tools := map[string]agents.Tool{}
		if err := d.register(config.Config{}, tools, nil); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		ctx := agents.WithSession(context.Background(), agents.SessionInfo{ID: "s1", Say: func(string) {}, Done: done})
		if _, err := tools["start_returns"].Call(ctx, json.RawMessage(`{"order_id":"1234","amount_cents":4250}`)); err != nil {
			t.Fatal(err)
		}
		if d.routes.len() != 1 {
			t.Fatalf("%d routes after the start, want 1", d.routes.len())
		}
		close(done)
		synctest.Wait()
		if d.routes.len() != 0 {
			t.Fatalf("%d routes after the session ended", d.routes.len())
		}
	})
}
