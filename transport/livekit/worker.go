package livekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/voiced-dev/voiced/transport"
)

var (
	// ErrWorker wraps failures of the worker connection.
	ErrWorker = errors.New("livekit: worker")
	// ErrDraining is the cause given to jobs cut because a drain ran out
	// of time.
	ErrDraining = fmt.Errorf("%w: drained", ErrWorker)
)

// WorkerConfig configures a Worker. URL, APIKey and APISecret are required.
type WorkerConfig struct {
	// URL is the LiveKit server (ws://, wss://, http:// or https://).
	URL               string
	APIKey, APISecret string
	// AgentName is the name rooms dispatch explicitly; "" takes every
	// room's default dispatch.
	AgentName string
	// MaxJobs is how many conversations the worker runs at once
	// (default 4). Its load, reported to the server, is jobs / MaxJobs.
	MaxJobs int
	// Attributes are set on the agent participant of every job.
	Attributes map[string]string
	// PingInterval is how often the worker pings the server and reports
	// its load (default 5 s).
	PingInterval time.Duration
	// Agent configures each job's Agent (its Logger defaults to Logger).
	Agent  Config
	Logger *slog.Logger
}

// Worker is a LiveKit agent worker: it registers with the server over the
// agent WebSocket (/agent, protobuf WorkerMessage / ServerMessage), reports
// its load, accepts job offers while it has room, and runs each assigned
// job as an Agent joining the job's room. Jobs survive a lost worker
// connection, which is re-established.
//
// Run serves until Drain has finished or ctx ends. Drain and Jobs are safe
// to call from any goroutine.
type Worker struct {
	cfg   WorkerConfig
	agent *Agent
	log   *slog.Logger

	mu       sync.Mutex
	id       string
	conn     *wconn
	jobs     map[string]context.CancelCauseFunc // running
	offered  map[string]time.Time               // accepted, not yet assigned
	total    int                                // jobs run so far
	draining bool
	drained  chan struct{} // closed when draining and no job is left
	wg       sync.WaitGroup
}

// NewWorker returns a worker running run for each conversation.
func NewWorker(cfg WorkerConfig, run transport.Factory) (*Worker, error) {
	if cfg.URL == "" || cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, fmt.Errorf("%w: URL, API key and API secret are required", ErrWorker)
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 4
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Agent.Logger == nil {
		cfg.Agent.Logger = cfg.Logger
	}
	return &Worker{
		cfg: cfg, agent: NewAgent(cfg.Agent, run),
		log:     cfg.Logger.With("transport", "livekit-worker"),
		jobs:    map[string]context.CancelCauseFunc{},
		offered: map[string]time.Time{},
		drained: make(chan struct{}),
	}, nil
}

// Jobs returns the number of running jobs and of jobs run so far.
func (w *Worker) Jobs() (running, total int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.jobs), w.total
}

// Drain stops taking jobs (the server is told the worker is full and
// offers are declined) and waits until the running jobs have ended or ctx
// ends, when it cuts them (cause ErrDraining). Run then returns nil.
// Idempotent.
func (w *Worker) Drain(ctx context.Context) error {
	w.mu.Lock()
	if !w.draining {
		w.draining = true
		w.log.Info("draining", "jobs", len(w.jobs))
		w.settleLocked()
	}
	c := w.conn
	w.mu.Unlock()
	if c != nil {
		w.sendStatus(c)
	}
	select {
	case <-w.drained:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		for _, cancel := range w.jobs {
			cancel(ErrDraining)
		}
		w.mu.Unlock()
		<-w.drained
		return ctx.Err()
	}
}

// settleLocked closes drained once draining and idle.
func (w *Worker) settleLocked() {
	if !w.draining || len(w.jobs) > 0 {
		return
	}
	select {
	case <-w.drained:
	default:
		close(w.drained)
	}
}

// Run registers with the server and serves jobs until Drain has finished
// (nil) or ctx ends (ctx's error; running jobs are cut). A lost connection
// is re-established with backoff. All jobs have ended when it returns.
func (w *Worker) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer func() {
		cancelJobs(context.Canceled)
		w.wg.Wait()
	}()
	go func() {
		select {
		case <-ctx.Done():
			cancelJobs(context.Cause(ctx))
		case <-w.drained:
		}
	}()
	backoff := 500 * time.Millisecond
	for {
		start := time.Now()
		err := w.connect(ctx, jobCtx)
		select {
		case <-w.drained:
			return nil
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.mu.Lock()
		draining := w.draining
		w.mu.Unlock()
		if draining {
			// Jobs still run without the connection; wait for them.
			select {
			case <-w.drained:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if time.Since(start) > 30*time.Second {
			backoff = 500 * time.Millisecond
		}
		w.log.Warn("worker connection lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		case <-w.drained:
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// wconn is one worker WebSocket connection. Writes are serialized.
type wconn struct {
	ws *gws.Conn
	mu sync.Mutex
}

func (c *wconn) send(m *livekit.WorkerMessage) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(gws.BinaryMessage, b)
}

// agentURL turns the server URL into the worker endpoint.
func agentURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("%w: URL %q: %w", ErrWorker, server, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("%w: URL %q: scheme must be ws, wss, http or https", ErrWorker, server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/agent"
	u.RawQuery = url.Values{"protocol": {fmt.Sprint(livekit.CurrentWorkerProtocol)}}.Encode()
	return u.String(), nil
}

// connect runs one connection: register, then serve server messages until
// the connection fails, ctx ends, or the worker has drained.
func (w *Worker) connect(ctx, jobCtx context.Context) error {
	target, err := agentURL(w.cfg.URL)
	if err != nil {
		return err
	}
	tok, err := workerToken(w.cfg.APIKey, w.cfg.APISecret)
	if err != nil {
		return err
	}
	d := gws.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, target, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%w: dial %s: %s: %w", ErrWorker, target, resp.Status, err)
		}
		return fmt.Errorf("%w: dial %s: %w", ErrWorker, target, err)
	}
	c := &wconn{ws: ws}
	defer ws.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-w.drained:
		case <-stop:
			return
		}
		c.mu.Lock()
		ws.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.mu.Unlock()
		ws.Close()
	}()

	err = c.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_Register{Register: &livekit.RegisterWorkerRequest{
		Type:         livekit.JobType_JT_ROOM,
		AgentName:    w.cfg.AgentName,
		Version:      "voiced",
		PingInterval: uint32(w.cfg.PingInterval / time.Second),
	}}})
	if err != nil {
		return fmt.Errorf("%w: register: %w", ErrWorker, err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	first, err := w.read(ws)
	if err != nil {
		return fmt.Errorf("%w: register: %w", ErrWorker, err)
	}
	reg := first.GetRegister()
	if reg == nil {
		return fmt.Errorf("%w: register: unexpected answer %T", ErrWorker, first.Message)
	}
	w.mu.Lock()
	w.id, w.conn = reg.WorkerId, c
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.conn == c {
			w.conn = nil
		}
		w.mu.Unlock()
	}()
	w.log.Info("worker registered", "worker_id", reg.WorkerId, "agent_name", w.cfg.AgentName, "server", reg.GetServerInfo().GetVersion())
	w.sendStatus(c)

	// Ping and report load; the server drops a worker that goes quiet.
	go func() {
		t := time.NewTicker(w.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			c.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_Ping{Ping: &livekit.WorkerPing{Timestamp: time.Now().UnixMilli()}}})
			w.sendStatus(c)
		}
	}()

	for {
		ws.SetReadDeadline(time.Now().Add(3*w.cfg.PingInterval + 10*time.Second))
		m, err := w.read(ws)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrWorker, err)
		}
		switch m := m.Message.(type) {
		case *livekit.ServerMessage_Availability:
			w.offer(c, m.Availability)
		case *livekit.ServerMessage_Assignment:
			w.assign(c, jobCtx, m.Assignment)
		case *livekit.ServerMessage_Termination:
			w.mu.Lock()
			if cancel, ok := w.jobs[m.Termination.JobId]; ok {
				cancel(fmt.Errorf("%w: job terminated by the server", ErrWorker))
			}
			w.mu.Unlock()
		case *livekit.ServerMessage_Pong, *livekit.ServerMessage_Register:
		}
	}
}

func (w *Worker) read(ws *gws.Conn) (*livekit.ServerMessage, error) {
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != gws.BinaryMessage {
			continue
		}
		var m livekit.ServerMessage
		if err := proto.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("bad server message: %w", err)
		}
		return &m, nil
	}
}

// sendStatus reports the worker's load and whether it takes jobs.
func (w *Worker) sendStatus(c *wconn) {
	w.mu.Lock()
	w.expireOffersLocked()
	n := len(w.jobs) + len(w.offered)
	status := livekit.WorkerStatus_WS_AVAILABLE
	if w.draining || n >= w.cfg.MaxJobs {
		status = livekit.WorkerStatus_WS_FULL
	}
	load := float32(n) / float32(w.cfg.MaxJobs)
	jobs := len(w.jobs)
	w.mu.Unlock()
	c.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_UpdateWorker{UpdateWorker: &livekit.UpdateWorkerStatus{
		Status: &status, Load: min(load, 1), JobCount: uint32(jobs),
	}}})
}

// offerTimeout is how long an accepted offer holds a slot without an
// assignment (the server gives up on an offer after 10 s).
const offerTimeout = 15 * time.Second

func (w *Worker) expireOffersLocked() {
	for id, at := range w.offered {
		if time.Since(at) > offerTimeout {
			delete(w.offered, id)
		}
	}
}

// offer answers an availability request.
func (w *Worker) offer(c *wconn, req *livekit.AvailabilityRequest) {
	job := req.GetJob()
	w.mu.Lock()
	w.expireOffersLocked()
	ok := !w.draining && len(w.jobs)+len(w.offered) < w.cfg.MaxJobs
	if ok {
		w.offered[job.GetId()] = time.Now()
	}
	w.mu.Unlock()
	attrs := map[string]string{}
	for k, v := range w.cfg.Attributes {
		attrs[k] = v
	}
	resp := &livekit.AvailabilityResponse{
		JobId:                 job.GetId(),
		Available:             ok,
		ParticipantIdentity:   "voiced-" + job.GetId(),
		ParticipantName:       "voiced",
		ParticipantAttributes: attrs,
	}
	w.log.Info("job offered", "job", job.GetId(), "room", job.GetRoom().GetName(), "accepted", ok)
	c.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_Availability{Availability: resp}})
	w.sendStatus(c)
}

// assign starts an assigned job.
func (w *Worker) assign(c *wconn, jobCtx context.Context, a *livekit.JobAssignment) {
	job := a.GetJob()
	id := job.GetId()
	target := w.cfg.URL
	if a.Url != nil && *a.Url != "" {
		target = *a.Url
	}
	ctx, cancel := context.WithCancelCause(jobCtx)
	w.mu.Lock()
	delete(w.offered, id)
	if _, dup := w.jobs[id]; dup {
		w.mu.Unlock()
		cancel(nil)
		return
	}
	w.jobs[id] = cancel
	w.total++
	w.wg.Add(1)
	w.mu.Unlock()
	log := w.log.With("job", id, "room", job.GetRoom().GetName())
	log.Info("job started")
	go func() {
		defer w.wg.Done()
		err := w.agent.Join(ctx, target, a.Token)
		cancel(nil)
		status, msg := livekit.JobStatus_JS_SUCCESS, ""
		if err != nil && !errors.Is(err, context.Canceled) {
			status, msg = livekit.JobStatus_JS_FAILED, err.Error()
		}
		log.Info("job ended", "err", err)
		w.mu.Lock()
		delete(w.jobs, id)
		cur := w.conn
		w.mu.Unlock()
		if cur != nil {
			cur.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_UpdateJob{UpdateJob: &livekit.UpdateJobStatus{JobId: id, Status: status, Error: msg}}})
			w.sendStatus(cur)
		}
		w.mu.Lock()
		w.settleLocked()
		w.mu.Unlock()
	}()
	c.send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_UpdateJob{UpdateJob: &livekit.UpdateJobStatus{JobId: id, Status: livekit.JobStatus_JS_RUNNING}}})
	w.sendStatus(c)
}
