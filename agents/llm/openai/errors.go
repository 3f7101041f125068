package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/voiced-dev/voiced/agents"
)

// maxDetail bounds the server's words kept in an error.
const maxDetail = 1024

// fail turns err, met while streaming, into what Stream yields: ctx's cause
// if ctx is done, else a ProviderError. rctx is the request's context,
// cancelled with ErrTimeout by the header timer. yielded says whether an
// event was yielded already, which rules retrying out.
func (m *Model) fail(ctx, rctx context.Context, err error, yielded bool) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	pe := &agents.ProviderError{Provider: ProviderName, Op: "stream"}
	var (
		apiErr *goopenai.APIError
		reqErr *goopenai.RequestError
		synErr *json.SyntaxError
		typErr *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(context.Cause(rctx), ErrTimeout):
		pe.Err = fmt.Errorf("%w (%v)", ErrTimeout, m.timeout)
		pe.Retryable = true
	case errors.As(err, &apiErr):
		pe.Status = apiErr.HTTPStatusCode
		pe.Err = fmt.Errorf("%w: %s", ErrAPI, describe(apiErr))
		// Status 0: an error event inside a 200 stream; the server
		// accepted the request, so the failure is on its side.
		pe.Retryable = pe.Status == 0 || retryableStatus(pe.Status)
	case errors.As(err, &reqErr):
		pe.Status = reqErr.HTTPStatusCode
		detail := clip(strings.TrimSpace(string(reqErr.Body)))
		if detail == "" {
			detail = http.StatusText(pe.Status)
		}
		pe.Err = fmt.Errorf("%w: %s", ErrAPI, detail)
		pe.Retryable = retryableStatus(pe.Status)
	case errors.As(err, &synErr), errors.As(err, &typErr):
		pe.Err = fmt.Errorf("%w: bad JSON in an event: %v", ErrMalformed, err)
	case errors.Is(err, goopenai.ErrTooManyEmptyStreamMessages):
		pe.Err = fmt.Errorf("%w: too many lines without data", ErrMalformed)
	case errors.Is(err, ErrMalformed):
		pe.Err = err
	case errors.Is(err, ErrTruncated):
		pe.Err = err
		pe.Retryable = true
	default: // the network: refused, reset, unexpected EOF, ...
		pe.Err = err
		pe.Retryable = true
	}
	if yielded {
		pe.Retryable = false
	}
	return pe
}

// retryableStatus reports whether a request that got status may succeed if
// sent again, or to another provider.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// describe renders a server's error: its message, then its code or type.
func describe(e *goopenai.APIError) string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.HTTPStatusCode)
	}
	var tag string
	switch c := e.Code.(type) {
	case string:
		tag = c
	case nil:
	default:
		tag = fmt.Sprint(c)
	}
	if tag == "" {
		tag = e.Type
	}
	if tag != "" {
		msg += " (" + tag + ")"
	}
	return clip(msg)
}

func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	s = s[:maxDetail]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// assembler joins streamed tool-call fragments into calls. The first
// fragment of a call carries its index, ID and name; the following ones
// the same index and more of the arguments. Calls arrive one after the
// other: a fragment for an index below the current one is an error.
// Servers that send no index (older Ollama) send each call whole; a
// fragment without an index starts a new call when it has a new ID and
// continues the current call otherwise.
type assembler struct {
	started bool
	index   int
	call    agents.ToolCall
	args    strings.Builder
}

// add takes one fragment and returns the previous call if this fragment
// starts a new one.
func (a *assembler) add(f goopenai.ToolCall) (*agents.ToolCall, error) {
	idx := a.index
	switch {
	case f.Index != nil:
		idx = *f.Index
	case !a.started:
		idx = 0
	case f.ID != "" && a.call.ID != "" && f.ID != a.call.ID:
		idx = a.index + 1
	}
	var done *agents.ToolCall
	switch {
	case a.started && idx == a.index:
		if a.call.ID == "" {
			a.call.ID = f.ID
		}
		if a.call.Name == "" {
			a.call.Name = f.Function.Name
		}
	case a.started && idx < a.index:
		return nil, fmt.Errorf("%w: a fragment of tool call %d after tool call %d began", ErrMalformed, idx, a.index)
	default:
		var err error
		if done, err = a.flush(); err != nil {
			return nil, err
		}
		a.started, a.index = true, idx
		a.call = agents.ToolCall{ID: f.ID, Name: f.Function.Name}
	}
	a.args.WriteString(f.Function.Arguments)
	return done, nil
}

// flush returns the call being assembled, if any, and forgets it.
func (a *assembler) flush() (*agents.ToolCall, error) {
	if !a.started {
		return nil, nil
	}
	a.started = false
	c := a.call
	if c.Name == "" {
		return nil, fmt.Errorf("%w: tool call %d has no name", ErrMalformed, a.index)
	}
	if c.ID == "" {
		c.ID = fmt.Sprintf("call_%d", a.index)
	}
	c.Arguments = a.args.String()
	if strings.TrimSpace(c.Arguments) == "" {
		c.Arguments = "{}"
	}
	a.args.Reset()
	return &c, nil
}
