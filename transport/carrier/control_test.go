package carrier

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/calltools"
)

// The call-control tools on each carrier: what each vendor's API is sent
// for send_dtmf, transfer_call and end_call, and what the agent is told
// where the vendor cannot.

var targets = map[string]string{"sales": "+15550123", "desk": "sip:desk@pbx.example.net"}

// controlWant is what one vendor does with the tools.
type controlWant struct {
	dtmf     restCall // "" method: not available
	transfer restCall // to "desk"; "" method: not available
}

func controlWants() map[string]controlWant {
	return map[string]controlWant{
		"twilio": {
			transfer: restCall{method: "POST", path: "/2010-04-01/Accounts/AC1/Calls/CA1.json", auth: "Basic QUMxOnR3LXNlY3JldA==",
				ctype: "application/x-www-form-urlencoded",
				body:  url.Values{"Twiml": {"<Response><Dial><Sip>sip:desk@pbx.example.net</Sip></Dial></Response>"}}.Encode()},
		},
		"telnyx": {
			dtmf:     restCall{method: "POST", path: "/v2/calls/v3:cc1/actions/send_dtmf", auth: "Bearer tx-key", ctype: "application/json", body: `{"digits":"12#"}`},
			transfer: restCall{method: "POST", path: "/v2/calls/v3:cc1/actions/transfer", auth: "Bearer tx-key", ctype: "application/json", body: `{"to":"sip:desk@pbx.example.net"}`},
		},
		"plivo": {
			dtmf: restCall{method: "POST", path: "/v1/Account/MA1/Call/pc1/DTMF/", auth: "Basic TUExOnBsLXNlY3JldA==", ctype: "application/json", body: `{"digits":"12#"}`},
		},
		"vonage": {
			dtmf: restCall{method: "PUT", path: "/v1/calls/vu1/dtmf", ctype: "application/json", body: `{"digits":"12#"}`},
			transfer: restCall{method: "PUT", path: "/v1/calls/vu1", ctype: "application/json",
				body: `{"action":"transfer","destination":{"ncco":[{"action":"connect","endpoint":[{"type":"sip","uri":"sip:desk@pbx.example.net"}]}],"type":"ncco"}}`},
		},
		"exotel": {},
	}
}

// session returns the ID of the edge's one live call.
func (e *edge) session(t *testing.T) string {
	t.Helper()
	var id string
	waitFor(t, "the call to be live", func() bool {
		e.h.mu.Lock()
		defer e.h.mu.Unlock()
		for k := range e.h.live {
			id = k
		}
		return id != ""
	})
	return id
}

func toolsByName(h *Handler) map[string]agents.Tool {
	lookup := func(id string) (calltools.Call, bool) {
		c, ok := h.Control(id)
		return c, ok
	}
	m := map[string]agents.Tool{}
	for _, t := range calltools.Tools(lookup, targets) {
		m[t.Spec().Name] = t
	}
	return m
}

// checkCall compares a recorded request with the one wanted; Vonage's
// bearer token is a fresh JWT, checked by its claims.
func checkCall(t *testing.T, got, want restCall) {
	t.Helper()
	if strings.HasPrefix(want.path, "/v1/calls/") {
		checkJWT(t, got.auth, "app-1")
		got.auth = ""
	}
	if got != want {
		t.Errorf("REST call\n got %+v\nwant %+v", got, want)
	}
}

func TestControlTools(t *testing.T) {
	wants := controlWants()
	for _, w := range wires() {
		t.Run(w.v.Name, func(t *testing.T) {
			want := wants[w.v.Name]
			e := newEdge(t, w)
			tools := toolsByName(e.h)
			c := dialCarrier(t, e.url, w)
			r := e.record(t)
			ctx := agents.WithSession(context.Background(), agents.SessionInfo{ID: e.session(t)})

			// send_dtmf
			got, err := tools["send_dtmf"].Call(ctx, json.RawMessage(`{"digits":"12#"}`))
			if want.dtmf.method == "" {
				if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), w.v.NoDTMF) || w.v.NoDTMF == "" {
					t.Errorf("send_dtmf = %q, %v; want not available with the reason", got, err)
				}
			} else if err != nil || got != "Pressed 12#." {
				t.Errorf("send_dtmf = %q, %v", got, err)
			}
			calls := e.api.calls()
			if want.dtmf.method == "" && len(calls) != 0 || want.dtmf.method != "" && len(calls) != 1 {
				t.Fatalf("REST calls after send_dtmf: %+v", calls)
			}
			if want.dtmf.method != "" {
				checkCall(t, calls[0], want.dtmf)
			}
			n := len(calls)

			// transfer_call: the agent finishes its answer first.
			c.keys("7#")
			answered := make(chan int, 1)
			go func() { answered <- c.answer() }()
			got, err = tools["transfer_call"].Call(ctx, json.RawMessage(`{"target":"desk"}`))
			if samples := <-answered; samples == 0 {
				t.Error("no answer before the transfer")
			}
			calls = e.api.calls()
			if want.transfer.method == "" {
				if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), w.v.NoTransfer) || w.v.NoTransfer == "" {
					t.Errorf("transfer_call = %q, %v; want not available with the reason", got, err)
				}
				if len(calls) != n {
					t.Fatalf("REST calls after an unavailable transfer: %+v", calls[n:])
				}
			} else {
				if err != nil || !strings.Contains(got, "transferred to desk") {
					t.Fatalf("transfer_call = %q, %v", got, err)
				}
				if len(calls) != n+1 {
					t.Fatalf("REST calls after transfer: %+v", calls[n:])
				}
				checkCall(t, calls[n], want.transfer)
				<-r.done
				if !errors.Is(r.err, ErrTransferred) {
					t.Errorf("session ended with %v, want ErrTransferred", r.err)
				}
				select {
				case <-c.gone:
				case <-time.After(readTimeout):
					t.Fatal("stream not closed after the transfer")
				}
				if calls := e.api.calls(); len(calls) != n+1 {
					t.Errorf("a transferred call was hung up: %+v", calls[n+1:])
				}
				// end_call on a second call.
				c = dialCarrier(t, e.url, w)
				r = e.record(t)
				e.api.mu.Lock()
				e.api.reqs = nil
				e.api.mu.Unlock()
				n = 0
				ctx = agents.WithSession(context.Background(), agents.SessionInfo{ID: e.session(t)})
			}

			// end_call while an answer plays: the hang-up follows its mark.
			c.keys("5#")
			if o := c.next(); o.kind != "media" {
				t.Fatalf("first message of the answer: %q", o.kind)
			}
			got, err = tools["end_call"].Call(ctx, json.RawMessage(`{}`))
			if err != nil || !strings.Contains(got, "will end") {
				t.Fatalf("end_call = %q, %v", got, err)
			}
			c.answer()
			<-r.done
			if !errors.Is(r.err, ErrEndedByAgent) {
				t.Errorf("session ended with %v, want ErrEndedByAgent", r.err)
			}
			select {
			case <-c.gone:
			case <-time.After(readTimeout):
				t.Fatal("stream not closed after end_call")
			}
			calls = e.api.calls()
			if w.hangup.method == "" {
				if len(calls) != n {
					t.Errorf("REST calls on a vendor without hang-up: %+v", calls[n:])
				}
				return
			}
			if len(calls) != n+1 {
				t.Fatalf("REST calls after end_call: %+v", calls[n:])
			}
			checkCall(t, calls[n], w.hangup)
		})
	}
}

// A refused transfer leaves the call up and tells the agent why; a bad
// target is refused before any request; a session without a call gets
// calltools.ErrNotACall.
func TestTransferRefused(t *testing.T) {
	w := wires()[1] // Telnyx
	e := newEdge(t, w)
	c := dialCarrier(t, e.url, w)
	r := e.record(t)
	id := e.session(t)
	k, _ := e.h.Control(id)
	ctx := context.Background()
	if err := k.Transfer(ctx, "sip:x@y <bad>"); !errors.Is(err, ErrTransfer) {
		t.Errorf("bad target: %v", err)
	}
	if n := len(e.api.calls()); n != 0 {
		t.Errorf("%d REST calls for a bad target", n)
	}
	e.api.refuse.Store(true)
	if err := k.Transfer(ctx, "+15550123"); !errors.Is(err, ErrTransfer) || !strings.Contains(err.Error(), "404") {
		t.Errorf("refused transfer: %v", err)
	}
	// The call goes on: a keypad entry is still answered.
	c.keys("3#")
	if c.answer() == 0 {
		t.Error("no answer after a refused transfer")
	}
	select {
	case <-r.done:
		t.Fatalf("session ended: %v", r.err)
	default:
	}
	tools := toolsByName(e.h)
	_, err := tools["end_call"].Call(agents.WithSession(ctx, agents.SessionInfo{ID: "nobody"}), json.RawMessage(`{}`))
	if !errors.Is(err, calltools.ErrNotACall) {
		t.Errorf("end_call on another session: %v", err)
	}
}
