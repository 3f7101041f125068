package server

import (
	"context"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/temporal"
	"github.com/voiced-dev/voiced/agents/durable/temporal/temporaltest"
	"github.com/voiced-dev/voiced/internal/config"
)

// TestWorkflowAPITemporal is TestWorkflowAPI with the workflows on a
// Temporal dev server ([durable] engine = "temporal"): the API answers
// alike.
func TestWorkflowAPITemporal(t *testing.T) {
	addr := temporaltest.Own(t)
	s := newTest(t, func(c *config.Config) { c.Server.MaxBodyBytes = 512 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := temporal.Dial(ctx, temporal.Options{Address: addr, TaskQueue: "voiced-" + durable.NewRunID()[4:]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.Register(greetWorkflow(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	testWorkflowAPI(t, s, e)
}
