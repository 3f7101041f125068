package workflow

import (
	"context"
	"sync"

	"github.com/voiced-dev/voiced/agents"
)

// group runs members concurrently under a shared context. Their events and
// results are funnelled through one channel to the goroutine that called
// next, which is the only one that emits.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan groupMsg
	sem    chan struct{}
	wg     sync.WaitGroup
}

type groupResult struct {
	key int
	out string
	err error
}

type groupMsg struct {
	ev  agents.AgentEvent
	res *groupResult
}

// newGroup returns a group that runs at most limit members at once (0: no
// limit). The caller must call stop.
func newGroup(ctx context.Context, limit int) *group {
	ctx, cancel := context.WithCancel(ctx)
	g := &group{ctx: ctx, cancel: cancel, ch: make(chan groupMsg)}
	if limit > 0 {
		g.sem = make(chan struct{}, limit)
	}
	return g
}

// start runs r on in on a new goroutine; its result comes back from next
// with key.
func (g *group) start(key int, r agents.Runnable, in agents.Input) {
	g.wg.Go(func() {
		res := &groupResult{key: key}
		if g.sem != nil {
			select {
			case g.sem <- struct{}{}:
				defer func() { <-g.sem }()
			case <-g.ctx.Done():
				return
			}
		}
		res.out, res.err = runMember(g.ctx, r, in, false, func(ev agents.AgentEvent) bool {
			return g.send(groupMsg{ev: ev})
		})
		g.send(groupMsg{res: res})
	})
}

func (g *group) send(m groupMsg) bool {
	select {
	case g.ch <- m:
		return true
	case <-g.ctx.Done():
		return false
	}
}

// next forwards members' events to emit until one member ends, and returns
// its result. It fails with the context's cause when the run is cancelled
// and with errStopped when emit refuses.
func (g *group) next(emit emitFunc) (*groupResult, error) {
	for {
		select {
		case m := <-g.ch:
			if m.res != nil {
				return m.res, nil
			}
			if !emit(m.ev) {
				return nil, errStopped
			}
		case <-g.ctx.Done():
			return nil, context.Cause(g.ctx)
		}
	}
}

// stop cancels every member still running and waits for them to end.
func (g *group) stop() {
	g.cancel()
	g.wg.Wait()
}
