package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// The workflow API (docs/workflows.md): start, inspect, signal and cancel
// durable workflow runs from outside a conversation. Every route is behind
// the server's middleware (authentication, body bound). Errors are JSON:
// {"error": "..."}.
func (s *Server) workflowRoutes() {
	s.mux.HandleFunc("POST /workflows", s.withEngine(s.startWorkflow))
	s.mux.HandleFunc("GET /workflows/{id}", s.withEngine(s.getWorkflow))
	s.mux.HandleFunc("POST /workflows/{id}/signal", s.withEngine(s.signalWorkflow))
	s.mux.HandleFunc("DELETE /workflows/{id}", s.withEngine(s.cancelWorkflow))
}

// cancelWait bounds how long DELETE waits for a running step to stop.
const cancelWait = 10 * time.Second

func (s *Server) withEngine(h func(http.ResponseWriter, *http.Request, durable.Backend)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.loaded.Load() {
			jsonError(w, http.StatusServiceUnavailable, "loading")
			return
		}
		e := s.engine.Load()
		if e == nil {
			jsonError(w, http.StatusNotFound, "no workflows here: declare [[workflows]] in the configuration")
			return
		}
		h(w, r, *e)
	}
}

// setWorkflows serves the workflow API on b (an Engine, or another
// durable.Backend such as Temporal's).
func (s *Server) setWorkflows(b durable.Backend) { s.engine.Store(&b) }

type startRequest struct {
	Workflow string          `json:"workflow"`
	Input    json.RawMessage `json:"input"`
	// ID, if set, is the run's ID: starting again with the same ID,
	// workflow and input returns the same run (200 instead of 201).
	ID string `json:"id"`
}

func (s *Server) startWorkflow(w http.ResponseWriter, r *http.Request, e durable.Backend) {
	var req startRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Workflow == "" {
		jsonError(w, http.StatusBadRequest, "workflow: required")
		return
	}
	in := req.Input
	if len(in) == 0 {
		in = json.RawMessage("{}")
	}
	id, created := req.ID, true
	var err error
	if id == "" {
		id, err = e.Start(r.Context(), req.Workflow, in)
	} else {
		created, err = e.StartWithID(r.Context(), id, req.Workflow, in)
	}
	if err != nil {
		workflowError(w, err)
		return
	}
	info, err := e.Status(r.Context(), id)
	if err != nil {
		workflowError(w, err)
		return
	}
	w.Header().Set("Location", "/workflows/"+id)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, runView(info))
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request, e durable.Backend) {
	info, err := e.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		workflowError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, runView(info))
}

type signalRequest struct {
	Signal  string          `json:"signal"`
	Payload json.RawMessage `json:"payload"`
}

func (s *Server) signalWorkflow(w http.ResponseWriter, r *http.Request, e durable.Backend) {
	var req signalRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Signal == "" {
		jsonError(w, http.StatusBadRequest, "signal: required")
		return
	}
	p := req.Payload
	if len(p) == 0 {
		p = json.RawMessage("null")
	}
	id := r.PathValue("id")
	if err := e.Signal(r.Context(), id, req.Signal, p); err != nil {
		workflowError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "signal": req.Signal, "status": "sent"})
}

func (s *Server) cancelWorkflow(w http.ResponseWriter, r *http.Request, e durable.Backend) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), cancelWait)
	defer cancel()
	if err := e.Cancel(ctx, id); err != nil {
		workflowError(w, err)
		return
	}
	info, err := e.Status(r.Context(), id)
	if err != nil {
		workflowError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, runView(info))
}

// decodeBody decodes a JSON request body strictly into v, answering the
// error itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the object")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		jsonError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes (server.max_body_bytes)", tooBig.Limit))
		return false
	case err != nil:
		jsonError(w, http.StatusBadRequest, "body: want a JSON object: "+err.Error())
		return false
	}
	return true
}

// workflowError answers err with its status: 404 for an unknown run or
// workflow, 409 for a finished run or a run ID in use, 400 for bad input.
func workflowError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, durable.ErrNotFound), errors.Is(err, durable.ErrUnknownWorkflow):
		code = http.StatusNotFound
	case errors.Is(err, durable.ErrConflict), errors.Is(err, durable.ErrRunFinished):
		code = http.StatusConflict
	case errors.Is(err, durable.ErrInvalidInput), errors.Is(err, durable.ErrInvalidID):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	jsonError(w, code, err.Error())
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code, b = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"encode"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// run is a run as the API shows it.
type run struct {
	ID       string          `json:"id"`
	Workflow string          `json:"workflow"`
	Status   durable.Status  `json:"status"`
	Step     string          `json:"step,omitempty"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
	Error    string          `json:"error,omitempty"`
	Input    json.RawMessage `json:"input"`
	Result   json.RawMessage `json:"result,omitempty"`
	Steps    []runStep       `json:"steps"`
}

type runStep struct {
	Name      string          `json:"name"`
	Completed bool            `json:"completed"`
	Attempts  int             `json:"attempts"`
	Resumes   int             `json:"resumes,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
}

func runView(info durable.RunInfo) run {
	v := run{
		ID: info.ID, Workflow: info.Workflow, Status: info.Status, Step: info.Step,
		Created: info.Created, Updated: info.Updated, Error: info.Error,
		Input: info.Input, Result: info.Result, Steps: []runStep{},
	}
	for _, s := range info.Steps {
		v.Steps = append(v.Steps, runStep{Name: s.Name, Completed: s.Completed, Attempts: s.Attempts, Resumes: s.Resumes, LastError: s.LastError, Output: s.Output})
	}
	return v
}
