package rtvi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// echoBot answers each final transcript with a sentence of 200 ms of
// audio at the session's output format, and records what reached it.
type echoBot struct {
	out frame.Format

	mu      sync.Mutex
	samples int
	texts   []string
	meta    json.RawMessage
}

func (b *echoBot) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.InputAudio:
		b.mu.Lock()
		b.samples += len(f.Samples)
		b.mu.Unlock()
	case *frame.Transcript:
		if !f.Final {
			break
		}
		b.mu.Lock()
		b.texts = append(b.texts, f.Text)
		b.mu.Unlock()
		text := "You said " + f.Text + "."
		out.Emit(&frame.TTSText{Text: text})
		n, chunk := b.out.Samples(200*time.Millisecond), b.out.Samples(20*time.Millisecond)
		for sent := 0; sent < n; sent += chunk {
			a := &frame.OutputAudio{Format: b.out, Samples: make([]int16, chunk)}
			if sent+chunk >= n {
				a.Spoken = text
			}
			out.Emit(a)
		}
		return nil
	}
	out.Pass(f)
	return nil
}

type wsFixture struct {
	srv    *httptest.Server
	reg    *Registry
	adm    *transport.Admission
	mu     sync.Mutex
	bots   []*echoBot
	errs   chan error
	served chan struct{} // a connection's handler returned
}

func newWSFixture(t *testing.T) *wsFixture {
	fx := &wsFixture{adm: transport.NewAdmission(4), errs: make(chan error, 8), served: make(chan struct{}, 8)}
	fx.reg = NewRegistry(fx.adm, time.Minute)
	run := func(ctx context.Context, s *transport.Session) error {
		b := &echoBot{out: s.Out, meta: s.Start}
		fx.mu.Lock()
		fx.bots = append(fx.bots, b)
		fx.mu.Unlock()
		p := pipeline.New(pipeline.Options{Observers: []pipeline.Observer{s.Observer}}, s.Input, b, s.Output)
		err := transport.Run(ctx, s, p)
		fx.errs <- err
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /start", StartHandler(StartConfig{Registry: fx.reg}))
	wsh := NewWSHandler(WSConfig{Admission: fx.adm, Registry: fx.reg}, run)
	mux.HandleFunc("GET /rtvi/ws", func(w http.ResponseWriter, r *http.Request) {
		wsh.ServeHTTP(w, r)
		fx.served <- struct{}{}
	})
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		fx.adm.Shutdown(context.Background())
		fx.srv.Close()
	})
	return fx
}

func (fx *wsFixture) bot(t *testing.T) *echoBot {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.bots) != 1 {
		t.Fatalf("%d sessions ran", len(fx.bots))
	}
	return fx.bots[0]
}

// start POSTs /start and dials the wsUrl.
func (fx *wsFixture) start(t *testing.T, body string) *gws.Conn {
	t.Helper()
	resp, err := http.Post(fx.srv.URL+"/start", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || len(got) != 1 {
		t.Fatalf("/start: %d %v, want 200 and only wsUrl", resp.StatusCode, got)
	}
	u, _ := got["wsUrl"].(string)
	if !strings.HasPrefix(u, "ws://"+fx.srv.Listener.Addr().String()+"/rtvi/ws?session=") {
		t.Fatalf("wsUrl %q", u)
	}
	ws, _, err := gws.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func sendRTVI(t *testing.T, ws *gws.Conn, typ, id, data string) {
	t.Helper()
	msg := `{"label":"rtvi-ai","type":"` + typ + `","id":"` + id + `","data":` + data + `}`
	if err := ws.WriteMessage(gws.BinaryMessage, EncodeMessage([]byte(msg))); err != nil {
		t.Fatal(err)
	}
}

// next reads frames until an RTVI message of type typ, counting the audio
// bytes seen on the way.
func next(t *testing.T, ws *gws.Conn, typ string, audioBytes *int) Message {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if mt != gws.BinaryMessage {
			t.Fatalf("server sent a text message")
		}
		f, err := DecodeFrame(data)
		if err != nil {
			t.Fatalf("server sent a bad frame: %v", err)
		}
		switch f.Kind {
		case FrameAudio:
			if f.SampleRate != DefaultOutputRate || f.Channels != 1 {
				t.Fatalf("bot audio %v", f)
			}
			if audioBytes != nil {
				*audioBytes += len(f.Audio)
			}
		case FrameMessage:
			var m Message
			if err := json.Unmarshal(f.Data, &m); err != nil || m.Label != Label {
				t.Fatalf("server sent %q", f.Data)
			}
			if m.Type == typ {
				return m
			}
		default:
			t.Fatalf("server sent %v", f)
		}
	}
}

func TestWSSession(t *testing.T) {
	fx := newWSFixture(t)
	ws := fx.start(t, `{"transport":"websocket","body":{"user":"ada"}}`)
	sendRTVI(t, ws, "client-ready", "r1", `{"version":"2.1.0","about":{"library":"test"}}`)
	m := next(t, ws, TypeBotReady, nil)
	if m.ID != "r1" || !bytes.Contains(m.Data, []byte(`"version":"2.1.0"`)) {
		t.Fatalf("bot-ready %s", m.Data)
	}
	// 0.5 s of 16 kHz audio in client-js's 512-byte chunks.
	for range 31 {
		if err := ws.WriteMessage(gws.BinaryMessage, EncodeAudio(make([]int16, 256), 16000, 1)); err != nil {
			t.Fatal(err)
		}
	}
	sendRTVI(t, ws, "send-text", "t1", `{"content":"hello","options":{}}`)
	var audio int
	next(t, ws, TypeBotTTSText, &audio)
	var out BotOutput
	for !out.Spoken {
		m = next(t, ws, TypeBotOutput, &audio)
		json.Unmarshal(m.Data, &out)
	}
	if out.Text != "You said hello." || out.SpokenStatus != SpokenCompleted {
		t.Errorf("spoken bot-output %s", m.Data)
	}
	if want := 2 * DefaultOutputRate / 5; audio != want {
		t.Errorf("got %d bytes of bot audio before it was reported spoken, want %d", audio, want)
	}
	sendRTVI(t, ws, "client-message", "c1", `{"t":"session"}`)
	m = next(t, ws, TypeServerResponse, nil)
	if m.ID != "c1" || !bytes.Contains(m.Data, []byte(`"metadata":{"user":"ada"}`)) {
		t.Errorf("server-response %s", m.Data)
	}
	sendRTVI(t, ws, "disconnect-bot", "d1", `{}`)
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if !gws.IsCloseError(err, gws.CloseNormalClosure) {
				t.Errorf("closed with %v, want a normal closure", err)
			}
			break
		}
	}
	if err := <-fx.errs; err != nil {
		t.Errorf("session ended with %v", err)
	}
	b := fx.bot(t)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.samples != 31*256 || len(b.texts) != 1 || b.texts[0] != "hello" || string(b.meta) != `{"user":"ada"}` {
		t.Errorf("pipeline got %d samples, texts %q, metadata %s", b.samples, b.texts, b.meta)
	}
	<-fx.served
	if n := fx.adm.Sessions(); n != 0 {
		t.Errorf("%d sessions still admitted", n)
	}
}

func TestWSBadFrameEndsSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		text bool
		code int
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, false, gws.CloseInvalidFramePayloadData},
		{"text message", []byte("hello"), true, gws.CloseInvalidFramePayloadData},
		{"stereo", EncodeAudio(make([]int16, 4), 16000, 2), false, gws.CloseInvalidFramePayloadData},
		{"other rate", EncodeAudio(make([]int16, 4), 8000, 1), false, gws.CloseInvalidFramePayloadData},
		{"not json", EncodeMessage([]byte("nope")), false, gws.CloseInvalidFramePayloadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newWSFixture(t)
			ws := fx.start(t, `{"transport":"websocket"}`)
			sendRTVI(t, ws, "client-ready", "r1", `{"version":"2.1.0","about":{"library":"test"}}`)
			next(t, ws, TypeBotReady, nil)
			typ := gws.BinaryMessage
			if tc.text {
				typ = gws.TextMessage
			}
			ws.WriteMessage(typ, tc.msg)
			m := next(t, ws, TypeError, nil)
			var d ErrorData
			json.Unmarshal(m.Data, &d)
			if !d.Fatal {
				t.Errorf("error %s is not fatal", m.Data)
			}
			_, _, err := ws.ReadMessage()
			var ce *gws.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Errorf("closed with %v, want code %d", err, tc.code)
			}
			if err := <-fx.errs; !errors.Is(err, transport.ErrBadInput) {
				t.Errorf("session ended with %v", err)
			}
		})
	}
}

func TestWSUnknownSession(t *testing.T) {
	fx := newWSFixture(t)
	_, resp, err := gws.DefaultDialer.Dial("ws"+strings.TrimPrefix(fx.srv.URL, "http")+"/rtvi/ws?session=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("dial an unknown session: %v", err)
	}
}
