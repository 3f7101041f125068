package calltools

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/agents"
)

// fakeCall records what the tools ask of the call.
type fakeCall struct {
	ended    int
	keys     []string
	targets  []string
	transErr error
}

func (f *fakeCall) EndCall() { f.ended++ }
func (f *fakeCall) SendDTMF(_ context.Context, keys string) error {
	f.keys = append(f.keys, keys)
	return nil
}
func (f *fakeCall) Transfer(_ context.Context, target string) error {
	f.targets = append(f.targets, target)
	return f.transErr
}

func tool(t *testing.T, tools []agents.Tool, name string) agents.Tool {
	t.Helper()
	for _, tl := range tools {
		if tl.Spec().Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %q", name)
	return nil
}

func TestTools(t *testing.T) {
	f := &fakeCall{}
	lookup := func(id string) (Call, bool) {
		if id == "call-1" {
			return f, true
		}
		return nil, false
	}
	tools := Tools(lookup, map[string]string{"sales": "sip:sales@pbx", "support": "sip:2000@pbx"})
	if len(tools) != 3 || len(Tools(lookup, nil)) != 2 || len(Names(nil)) != 2 || len(Names(map[string]string{"a": "sip:a@b"})) != 3 {
		t.Fatal("transfer_call must exist exactly when there are targets")
	}
	onCall := agents.WithSession(context.Background(), agents.SessionInfo{ID: "call-1"})
	onWeb := agents.WithSession(context.Background(), agents.SessionInfo{ID: "ws-1"})

	for _, name := range []string{"end_call", "send_dtmf", "transfer_call"} {
		args := map[string]string{"end_call": `{}`, "send_dtmf": `{"digits":"1"}`, "transfer_call": `{"target":"sales"}`}[name]
		if _, err := tool(t, tools, name).Call(onWeb, json.RawMessage(args)); !errors.Is(err, ErrNotACall) {
			t.Errorf("%s on a WebSocket session: %v, want %v", name, err, ErrNotACall)
		}
	}
	if _, err := tool(t, tools, "end_call").Call(onCall, json.RawMessage(`{}`)); err != nil || f.ended != 1 {
		t.Errorf("end_call: %v, ended %d", err, f.ended)
	}
	if _, err := tool(t, tools, "send_dtmf").Call(onCall, json.RawMessage(`{"digits":"123#"}`)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{`{"digits":""}`, `{"digits":"12x"}`, `{"digits":"` + strings.Repeat("1", 33) + `"}`, `{}`} {
		if _, err := tool(t, tools, "send_dtmf").Call(onCall, json.RawMessage(bad)); !errors.Is(err, agents.ErrToolArgs) {
			t.Errorf("send_dtmf %s: %v, want %v", bad, err, agents.ErrToolArgs)
		}
	}
	if strings.Join(f.keys, ",") != "123#" {
		t.Errorf("keys sent %q, want only 123#", f.keys)
	}
	if _, err := tool(t, tools, "transfer_call").Call(onCall, json.RawMessage(`{"target":"support"}`)); err != nil {
		t.Error(err)
	}
	if _, err := tool(t, tools, "transfer_call").Call(onCall, json.RawMessage(`{"target":"sip:evil@elsewhere"}`)); !errors.Is(err, agents.ErrToolArgs) {
		t.Errorf("transfer to an unconfigured target: %v", err)
	}
	f.transErr = errors.New("sip: transfer failed: the new call got 486")
	if _, err := tool(t, tools, "transfer_call").Call(onCall, json.RawMessage(`{"target":"sales"}`)); err == nil || !strings.Contains(err.Error(), "486") {
		t.Errorf("failed transfer: %v", err)
	}
	if strings.Join(f.targets, ",") != "sip:2000@pbx,sip:sales@pbx" {
		t.Errorf("targets %q", f.targets)
	}
}
