package livekit

import (
	"errors"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/voiced-dev/voiced/transport"
)

func TestParseMessage(t *testing.T) {
	long := `{"type":"text","text":"` + string(make([]byte, transport.MaxText+1)) + `"}`
	for _, tc := range []struct {
		in   string
		want transport.Message
		ok   bool
	}{
		{`{"type":"text","text":"hi"}`, transport.Message{Type: "text", Text: "hi"}, true},
		{`{"type":"end"}`, transport.Message{Type: "end"}, true},
		{` {"type":"end"} `, transport.Message{Type: "end"}, true},
		{`{"type":"start"}`, transport.Message{}, false},
		{`{"text":"hi"}`, transport.Message{}, false},
		{`{"type":"text","text":"hi","extra":1}`, transport.Message{Type: "text", Text: "hi"}, true}, // the shared rules ignore unknown fields
		{`{"type":"end"}{"type":"end"}`, transport.Message{}, false},
		{`["end"]`, transport.Message{}, false},
		{"\xff", transport.Message{}, false},
		{long, transport.Message{}, false},
	} {
		got, err := parseMessage([]byte(tc.in))
		if tc.ok != (err == nil) {
			t.Errorf("%.40q: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Errorf("%.40q: %v does not wrap ErrBadMessage", tc.in, err)
		}
		if tc.ok && got != tc.want {
			t.Errorf("%.40q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"text","text":"hi"}`))
	f.Add([]byte(`{"type":"end"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err == nil && m.Type != "text" && m.Type != "end" {
			t.Fatalf("accepted type %q", m.Type)
		}
		if err == nil && len(m.Text) > transport.MaxText {
			t.Fatalf("accepted %d bytes of text", len(m.Text))
		}
	})
}

func TestAgentURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:7880":      "ws://127.0.0.1:7880/agent?protocol=1",
		"http://host:7880/":        "ws://host:7880/agent?protocol=1",
		"https://lk.example.com":   "wss://lk.example.com/agent?protocol=1",
		"wss://lk.example.com/lk/": "wss://lk.example.com/lk/agent?protocol=1",
	} {
		got, err := agentURL(in)
		if err != nil || got != want {
			t.Errorf("agentURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := agentURL("ftp://x"); !errors.Is(err, ErrWorker) {
		t.Errorf("ftp: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	jwt, err := NewToken(TokenConfig{APIKey: "k", APISecret: "s", Room: "r", Identity: "alice", TTL: time.Minute, Dispatch: "voiced"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.ParseAPIToken(jwt)
	if err != nil {
		t.Fatal(err)
	}
	_, grants, err := v.Verify("s")
	if err != nil {
		t.Fatal(err)
	}
	if grants.Identity != "alice" || grants.Video == nil || !grants.Video.RoomJoin || grants.Video.Room != "r" {
		t.Errorf("grants %+v", grants)
	}
	if rc := grants.GetRoomConfiguration(); rc == nil || len(rc.Agents) != 1 || rc.Agents[0].AgentName != "voiced" {
		t.Errorf("room configuration %+v", grants.GetRoomConfiguration())
	}
	for _, bad := range []TokenConfig{{APISecret: "s", Room: "r", Identity: "a"}, {APIKey: "k", APISecret: "s", Identity: "a"}, {APIKey: "k", APISecret: "s", Room: "r"}} {
		if _, err := NewToken(bad); !errors.Is(err, ErrToken) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestJoinErrorRedactsTokens(t *testing.T) {
	err := joinError(errors.New("unauthorized: invalid token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc_DEF-1, error: bad signature"))
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrJoin) {
		t.Errorf("%v is not ErrUnauthorized", err)
	}
	if want := "livekit: cannot join room: token rejected: unauthorized: invalid token: <token>, error: bad signature"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if err := joinError(errors.New("not found")); !errors.Is(err, ErrUnknownRoom) {
		t.Errorf("not found: %v", err)
	}
}
