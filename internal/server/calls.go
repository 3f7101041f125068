package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/auth"
	"github.com/voiced-dev/voiced/internal/calltools"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/sip"
)

// Outbound calls over HTTP (docs/sip.md): POST /calls dials, GET
// /calls/{id} reports (JSON, or Server-Sent Events with Accept:
// text/event-stream), DELETE /calls/{id} hangs up. The routes sit behind
// the server's middleware like every other: authentication, the Host
// check and the body bound.

// CallRequest is the body of POST /calls.
type CallRequest struct {
	To    string `json:"to"`    // sip:user@host, or a number the trunk routes
	From  string `json:"from"`  // caller ID (default the trunk's)
	Agent string `json:"agent"` // entry agent (default the configuration's)
	Trunk string `json:"trunk"` // trunk name (default the first)
	// Metadata is kept with the call and returned by GET /calls/{id}, and
	// the agents see it as session metadata "metadata.<key>".
	Metadata map[string]string `json:"metadata,omitempty"`
}

// CallStatus is what GET /calls/{id} returns.
type CallStatus struct {
	ID       string            `json:"id"`
	To       string            `json:"to"`
	Agent    string            `json:"agent,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	sip.CallEvent
	Events []sip.CallEvent `json:"events"`
}

// callInfo is what the server keeps beside a sip.Call.
type callInfo struct {
	agent    string
	metadata map[string]string
}

type callBook struct {
	mu    sync.Mutex
	calls map[string]callInfo
}

func (s *Server) routeCalls() {
	s.mux.HandleFunc("POST /calls", s.postCall)
	s.mux.HandleFunc("GET /calls/{id}", s.getCall)
	s.mux.HandleFunc("DELETE /calls/{id}", s.deleteCall)
}

func (s *Server) postCall(w http.ResponseWriter, r *http.Request) {
	srv := s.sip.Load()
	if srv == nil || s.builder == nil {
		http.Error(w, "SIP is not enabled on this server ([sip] listen, --sip-addr)", http.StatusServiceUnavailable)
		return
	}
	var req CallRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.To == "" {
		http.Error(w, `"to" is required`, http.StatusBadRequest)
		return
	}
	if len(req.Metadata) > 32 {
		http.Error(w, "metadata: at most 32 keys", http.StatusBadRequest)
		return
	}
	if p, ok := auth.FromContext(r.Context()); ok && p.Agent != "" && req.Agent != "" && p.Agent != req.Agent {
		http.Error(w, fmt.Sprintf("this access token is for agent %q", p.Agent), http.StatusForbidden)
		return
	}
	c, err := s.Dial(req)
	switch {
	case errors.Is(err, transport.ErrFull), errors.Is(err, transport.ErrShuttingDown), errors.Is(err, sip.ErrNotListening):
		transport.Refuse(w, err)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Location", "/calls/"+c.ID())
	writeJSON(w, http.StatusCreated, s.callStatus(c))
}

// ErrNoSIP means the server does not listen for SIP, so it cannot call.
var ErrNoSIP = errors.New("server: SIP is not enabled ([sip] listen, --sip-addr)")

// Dial places an outbound call with the loaded agents (POST /calls and
// voiced call). Call it after Load and ListenSIP.
func (s *Server) Dial(req CallRequest) (*sip.Call, error) {
	srv := s.sip.Load()
	if srv == nil || s.builder == nil {
		return nil, ErrNoSIP
	}
	b := *s.builder
	if req.Agent != "" {
		if !slices.ContainsFunc(s.builder.Agents, func(a agents.Runnable) bool { return a.Name() == req.Agent }) {
			return nil, fmt.Errorf("server: no agent %q", req.Agent)
		}
		b.Entry = req.Agent
	}
	c, err := srv.Dial(sip.DialRequest{To: req.To, From: req.From, Trunk: req.Trunk, Run: withMetadata(b.Run, req.Metadata)})
	if err != nil {
		return nil, err
	}
	s.calls.mu.Lock()
	if s.calls.calls == nil {
		s.calls.calls = map[string]callInfo{}
	}
	for id := range s.calls.calls {
		if srv.Lookup(id) == nil { // forgotten by the SIP server
			delete(s.calls.calls, id)
		}
	}
	s.calls.calls[c.ID()] = callInfo{agent: req.Agent, metadata: req.Metadata}
	s.calls.mu.Unlock()
	s.log.Info("outbound call", "call", c.ID(), "to", c.To(), "agent", req.Agent)
	return c, nil
}

// withMetadata runs run with the request's metadata in the session's
// metadata, each key as "metadata.<key>", as an RTVI start body's fields
// are "body.<field>": the agents see it (agents.SessionState, handoff
// conditions, hooks).
func withMetadata(run transport.Factory, md map[string]string) transport.Factory {
	if len(md) == 0 {
		return run
	}
	return func(ctx context.Context, s *transport.Session) error {
		if s.Metadata == nil {
			s.Metadata = make(map[string]string, len(md))
		}
		for k, v := range md {
			s.Metadata["metadata."+k] = v
		}
		return run(ctx, s)
	}
}

func (s *Server) callStatus(c *sip.Call) CallStatus {
	s.calls.mu.Lock()
	info := s.calls.calls[c.ID()]
	s.calls.mu.Unlock()
	evs, _ := c.Events()
	return CallStatus{ID: c.ID(), To: c.To(), Agent: info.agent, Metadata: info.metadata,
		CallEvent: evs[len(evs)-1], Events: evs}
}

func (s *Server) call(w http.ResponseWriter, r *http.Request) *sip.Call {
	srv := s.sip.Load()
	var c *sip.Call
	if srv != nil {
		c = srv.Lookup(r.PathValue("id"))
	}
	if c == nil {
		http.Error(w, "no such call", http.StatusNotFound)
	}
	return c
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	c := s.call(w, r)
	if c == nil {
		return
	}
	if r.Header.Get("Accept") != "text/event-stream" {
		writeJSON(w, http.StatusOK, s.callStatus(c))
		return
	}
	// Server-Sent Events: each event once, as it happens, until the call
	// ends or the client goes.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	sent := 0
	for {
		evs, changed := c.Events()
		for _, ev := range evs[sent:] {
			data, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.State, data)
		}
		sent = len(evs)
		if err := rc.Flush(); err != nil {
			return
		}
		if evs[len(evs)-1].State == sip.StateEnded {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) deleteCall(w http.ResponseWriter, r *http.Request) {
	c := s.call(w, r)
	if c == nil {
		return
	}
	c.Hangup()
	writeJSON(w, http.StatusAccepted, s.callStatus(c))
}

// callControl finds the phone call of a session for the call-control
// tools: a SIP call, or a carrier media stream (docs/carriers.md).
func (s *Server) callControl(sessionID string) (calltools.Call, bool) {
	if h := s.sip.Load(); h != nil {
		if c, ok := h.Control(sessionID); ok {
			return c, true
		}
	}
	if hs := s.carrier.Load(); hs != nil {
		for _, h := range *hs {
			if c, ok := h.Control(sessionID); ok {
				return c, true
			}
		}
	}
	return nil, false
}
