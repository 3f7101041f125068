package workflow

import (
	"fmt"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// Worker is a member that a Planner or Supervisor delegates to by name.
type Worker struct {
	// Name is what the model calls the worker (default: Agent.Name()).
	Name string
	// Description tells the model what the worker is for.
	Description string
	Agent       agents.Runnable
}

// workerSet indexes workers by name.
type workerSet struct {
	list  []Worker
	names []string
}

func newWorkerSet(kind, name string, workers []Worker) (workerSet, error) {
	if len(workers) == 0 {
		return workerSet{}, fmt.Errorf("%w: %s %q has no workers", ErrConfig, kind, name)
	}
	ws := workerSet{}
	seen := map[string]bool{}
	for i, w := range workers {
		if w.Agent == nil {
			return workerSet{}, fmt.Errorf("%w: %s %q: worker %d has no agent", ErrConfig, kind, name, i)
		}
		if w.Name == "" {
			w.Name = w.Agent.Name()
		}
		key := strings.ToLower(w.Name)
		if seen[key] {
			return workerSet{}, fmt.Errorf("%w: %s %q: duplicate worker %q", ErrConfig, kind, name, w.Name)
		}
		if strings.ContainsAny(w.Name, ":\n") {
			return workerSet{}, fmt.Errorf("%w: %s %q: worker name %q holds ':' or a newline", ErrConfig, kind, name, w.Name)
		}
		seen[key] = true
		ws.list = append(ws.list, w)
		ws.names = append(ws.names, w.Name)
	}
	return ws, nil
}

func (ws workerSet) get(name string) Worker {
	for _, w := range ws.list {
		if w.Name == name {
			return w
		}
	}
	return Worker{}
}

// describe lists the workers for a prompt, one "- name: description" line
// each.
func (ws workerSet) describe() string {
	var b strings.Builder
	for _, w := range ws.list {
		b.WriteString("- ")
		b.WriteString(w.Name)
		if w.Description != "" {
			b.WriteString(": ")
			b.WriteString(w.Description)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// named renames a Runnable (a worker known by another name than its own).
type named struct {
	name string
	agents.Runnable
}

func (n named) Name() string { return n.name }

func (w Worker) runnable() agents.Runnable {
	if w.Name == w.Agent.Name() {
		return w.Agent
	}
	return named{name: w.Name, Runnable: w.Agent}
}
