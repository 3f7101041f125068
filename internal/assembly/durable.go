package assembly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/declared"
	"github.com/voiced-dev/voiced/agents/durable/redis"
	"github.com/voiced-dev/voiced/agents/durable/temporal"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
)

// durableRuntime is the durable workflow engine of a program: its store,
// the workflows (declared ones and the demo returns workflow), the tools
// that start and control them, and the routing of a run's messages back
// to the session that started it.
type durableRuntime struct {
	engine     durable.Backend
	closeStore func() error
	routes     *runRoutes

	mu     sync.Mutex
	agents map[string]agents.Runnable // by name, for agent steps
}

// runRoutes routes a durable run's messages to the session that started
// it while that session lasts: an entry is removed when its session ends,
// so a finished session's stage is not kept alive by its Say. Its methods
// are safe for concurrent use; Close ends its goroutines.
type runRoutes struct {
	mu     sync.Mutex
	says   map[string]func(string) // run ID → the starting session's Say
	closed bool
	stop   chan struct{}  // closed by Close
	wg     sync.WaitGroup // one per route waiting for its session's end
}

func newRunRoutes() *runRoutes {
	return &runRoutes{says: map[string]func(string){}, stop: make(chan struct{})}
}

// add routes runID's messages to the session, until the session's Done is
// closed. A session without Done is routed to until Close.
func (r *runRoutes) add(runID string, info agents.SessionInfo) {
	if info.Say == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.says[runID] = info.Say
	if info.Done == nil {
		return
	}
	r.wg.Go(func() {
		select {
		case <-info.Done:
			r.mu.Lock()
			delete(r.says, runID)
			r.mu.Unlock()
		case <-r.stop:
		}
	})
}

// say speaks msg to the session that started runID, if it is still routed.
func (r *runRoutes) say(runID, msg string) {
	r.mu.Lock()
	say := r.says[runID]
	r.mu.Unlock()
	if say != nil {
		say(msg)
	}
}

// len returns how many runs are routed.
func (r *runRoutes) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.says)
}

// Close drops every route and waits for the goroutines to end.
func (r *runRoutes) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
		clear(r.says)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

var _ agents.Tool = (*durable.Tool)(nil)

// dataDir is where the embedded store lives by default.
func dataDir() (string, error) {
	if d := os.Getenv("VOICED_DATA"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "voiced"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share", "voiced"), nil
}

func openDurable(cfg config.Durable, log *slog.Logger) (*durableRuntime, error) {
	d := &durableRuntime{routes: newRunRoutes()}
	if cfg.Engine == "temporal" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e, err := temporal.Dial(ctx, temporal.Options{
			Address: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TemporalTaskQueue,
			Logger: log, Notify: d.routes.say,
		})
		if err != nil {
			return nil, err
		}
		d.engine, d.closeStore = e, func() error { return nil }
		return d, nil
	}
	var store durable.Store
	switch cfg.Store {
	case "", "bbolt":
		dir := cfg.Path
		if dir == "" {
			var err error
			if dir, err = dataDir(); err != nil {
				return nil, err
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		b, err := bolt.Open(dir)
		if err != nil {
			return nil, err
		}
		store, d.closeStore = b, b.Close
	case "redis":
		c := goredis.NewClient(&goredis.Options{Addr: cfg.Redis})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			return nil, fmt.Errorf("redis %s: %w", cfg.Redis, err)
		}
		store, d.closeStore = redis.New(c, ""), c.Close
	default:
		return nil, fmt.Errorf("unknown store %q", cfg.Store)
	}
	e, err := durable.New(store, durable.Options{Logger: log, Notify: d.routes.say, LeaseTTL: cfg.LeaseTTL})
	if err != nil {
		d.closeStore()
		return nil, err
	}
	d.engine = e
	return d, nil
}

// startTool returns the tool that starts workflow, whose runs speak to the
// session that started them.
func (d *durableRuntime) startTool(workflow, description string) *durable.Tool {
	t := durable.StartTool(d.engine, workflow, description)
	t.OnStart = func(ctx context.Context, runID string) {
		if info, ok := agents.SessionFromContext(ctx); ok {
			d.routes.add(runID, info)
		}
	}
	return t
}

// register registers the demo returns workflow (unless a declared one
// takes its name) and the [[workflows]], and adds the tools that start
// and control them to tools. Agent steps find their agent in d.agents,
// which setAgents fills once the agents are built.
func (d *durableRuntime) register(cfg config.Config, tools map[string]agents.Tool, toolsets map[string]agents.Toolset) error {
	lk := declared.Lookups{
		Tool: func(name string) (agents.Tool, bool) {
			t, ok := tools[name]
			return t, ok
		},
		Toolset: func(name string) (agents.Toolset, bool) {
			s, ok := toolsets[name]
			return s, ok
		},
		Agent: func(name string) (agents.Runnable, bool) {
			d.mu.Lock()
			defer d.mu.Unlock()
			a, ok := d.agents[name]
			return a, ok
		},
	}
	var made []*durable.Tool
	declaredReturns := false
	for _, wc := range cfg.Workflows {
		wf, err := declared.Build(wc, lk)
		if err != nil {
			return err
		}
		if err := d.engine.Register(wf); err != nil {
			return err
		}
		desc := wc.Description
		if desc == "" {
			desc = "Start the " + wc.Name + " workflow."
		}
		made = append(made, d.startTool(wc.Name, desc))
		declaredReturns = declaredReturns || wc.Name == demo.ReturnsWorkflowName
	}
	if !declaredReturns {
		if err := d.engine.Register(demo.Returns(demo.ReturnsConfig{AutoApprove: cfg.Durable.AutoApprove})); err != nil {
			return err
		}
		made = append(made, d.startTool(demo.ReturnsWorkflowName, "Start the return and refund of an order; the customer is told when it is approved."))
	}
	for _, t := range made {
		tools[t.Spec().Name] = t
	}
	for _, t := range durable.ControlTools(d.engine) {
		tools[t.Spec().Name] = t
	}
	return nil
}

// setAgents makes the agents that agent steps run (every enabled agent,
// by name); it fails if a step names one that is not among them.
func (d *durableRuntime) setAgents(cfg config.Config, members map[string]agents.Runnable) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.agents = members
	var errs []error
	for _, w := range cfg.Workflows {
		for _, s := range w.Steps {
			if _, ok := d.agents[s.Agent]; s.Agent != "" && !ok {
				errs = append(errs, fmt.Errorf("workflows %s: step %s: agent %q is not enabled", w.Name, s.Name, s.Agent))
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the engine (unfinished runs resume at the next start),
// closes the store and drops the routes.
func (d *durableRuntime) Close() error {
	d.engine.Close()
	d.routes.Close()
	return d.closeStore()
}
