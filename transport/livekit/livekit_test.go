package livekit

import (
	"errors"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/pion/rtp"
	"gopkg.in/hraban/opus.v2"

	"github.com/voiced-dev/voiced/frame"
)

func TestParseMessage(t *testing.T) {
	long := `{"type":"text","text":"` + string(make([]byte, MaxText+1)) + `"}`
	for _, tc := range []struct {
		in   string
		want message
		ok   bool
	}{
		{`{"type":"text","text":"hi"}`, message{Type: "text", Text: "hi"}, true},
		{`{"type":"end"}`, message{Type: "end"}, true},
		{` {"type":"end"} `, message{Type: "end"}, true},
		{`{"type":"start"}`, message{}, false},
		{`{"text":"hi"}`, message{}, false},
		{`{"type":"text","extra":1}`, message{}, false},
		{`{"type":"end"}{"type":"end"}`, message{}, false},
		{`["end"]`, message{}, false},
		{"\xff", message{}, false},
		{long, message{}, false},
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
		if err == nil && len(m.Text) > MaxText {
			t.Fatalf("accepted %d bytes of text", len(m.Text))
		}
	})
}

func TestEventFor(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		f    frame.Frame
		want event
		ok   bool
	}{
		{&frame.Transcript{Meta: frame.Meta{Turn: 3}, Text: "hi", Final: true}, event{Type: "transcript", Turn: 3, Text: "hi", Final: &yes}, true},
		{&frame.Transcript{Text: ""}, event{}, false},
		{&frame.TTSText{Text: "Hello."}, event{Type: "bot_text", Text: "Hello."}, true},
		{&frame.InputAudio{}, event{}, false},
	} {
		got, ok := eventFor(tc.f)
		if ok != tc.ok || ok && (got.Type != tc.want.Type || got.Text != tc.want.Text || got.Turn != tc.want.Turn || (got.Final == nil) != (tc.want.Final == nil)) {
			t.Errorf("%T: got %+v %v, want %+v %v", tc.f, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDecoderConceals checks that a gap of lost packets is filled with
// concealed frames, and that late or repeated packets are dropped.
func TestDecoderConceals(t *testing.T) {
	enc, err := opus.NewEncoder(opusRate, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDecoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, frameLen)
	for i := range pcm {
		pcm[i] = int16(8000 * (i % 48) / 48)
	}
	pkt := func(seq uint16) *rtp.Packet {
		b := make([]byte, maxPacket)
		n, err := enc.Encode(pcm, b)
		if err != nil {
			t.Fatal(err)
		}
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: b[:n]}
	}
	var frames []int
	emit := func(p []int16) { frames = append(frames, len(p)) }
	for _, seq := range []uint16{65534, 65535, 2, 2, 1, 3, 100} { // wraps; 0,1 lost; 2 repeated; 1 late; 4..99 a pause
		if err := d.decode(pkt(seq), emit); err != nil {
			t.Fatal(err)
		}
	}
	// 65534, 65535, PLC(0), PLC(1), 2, 3, 100.
	if len(frames) != 7 {
		t.Fatalf("got %d frames, want 7: %v", len(frames), frames)
	}
	for _, n := range frames {
		if n != frameLen {
			t.Errorf("frame of %d samples, want %d", n, frameLen)
		}
	}
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
