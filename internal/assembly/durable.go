package assembly

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/internal/config"
)

// durableRuntime is the durable workflow engine of a program: its store,
// the returns workflow, the tool that starts it, and the routing of a run's
// messages back to the session that started it.
type durableRuntime struct {
	engine     *durable.Engine
	tool       *durable.Tool
	closeStore func() error

	mu   sync.Mutex
	says map[string]func(string) // run ID → the starting session's Say
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
	d := &durableRuntime{says: map[string]func(string){}}
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
		b, err := durable.OpenBolt(dir)
		if err != nil {
			return nil, err
		}
		store, d.closeStore = b, b.Close
	case "redis":
		c := redis.NewClient(&redis.Options{Addr: cfg.Redis})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			return nil, fmt.Errorf("redis %s: %w", cfg.Redis, err)
		}
		store, d.closeStore = durable.NewRedis(c, ""), c.Close
	default:
		return nil, fmt.Errorf("unknown store %q", cfg.Store)
	}
	e, err := durable.New(store, durable.Options{Logger: log, Notify: d.notify})
	if err != nil {
		d.closeStore()
		return nil, err
	}
	if err := e.Register(durable.Returns(durable.ReturnsConfig{AutoApprove: cfg.AutoApprove})); err != nil {
		d.closeStore()
		return nil, err
	}
	d.engine = e
	d.tool = durable.StartTool(e, durable.ReturnsWorkflowName, "Start the return and refund of an order; the customer is told when it is approved.")
	d.tool.OnStart = func(ctx context.Context, runID string) {
		if info, ok := agents.SessionFromContext(ctx); ok && info.Say != nil {
			d.mu.Lock()
			d.says[runID] = info.Say
			d.mu.Unlock()
		}
	}
	return d, nil
}

// notify speaks a run's message to the session that started it, if it is
// still connected (a session that ended has a Say that does nothing).
func (d *durableRuntime) notify(runID, msg string) {
	d.mu.Lock()
	say := d.says[runID]
	d.mu.Unlock()
	if say != nil {
		say(msg)
	}
}

// Close stops the engine (unfinished runs resume at the next start) and
// closes the store.
func (d *durableRuntime) Close() error {
	d.engine.Close()
	return d.closeStore()
}
