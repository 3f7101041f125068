package carrier

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// The fake pipeline around the edge's stages:
//
//	s.Input → recorder → interrupter → bot → s.Output
//
// The interrupter stands for the turn-taking stage (it owns barge-in): loud
// caller audio interrupts the turn. The bot answers keypad entries: "9" with
// a long answer, "0" with a goodbye and then End (the agent ending the
// call), anything else with a short answer.

type record struct {
	mu     sync.Mutex
	typed  []string // typed transcripts, in order
	keys   []byte   // DTMF frames, in order
	audio  int      // samples of input audio, all at 16 kHz
	badFmt frame.Format
	err    error
	done   chan struct{}
}

func (r *record) Name() string { return "recorder" }

func (r *record) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	r.mu.Lock()
	switch f := f.(type) {
	case *frame.InputAudio:
		if f.Format != frame.Mono16k {
			r.badFmt = f.Format
		}
		r.audio += len(f.Samples)
	case *frame.DTMF:
		r.keys = append(r.keys, f.Digit)
	case *frame.Transcript:
		if f.Typed {
			r.typed = append(r.typed, f.Text)
		}
	}
	r.mu.Unlock()
	out.Pass(f)
	return nil
}

func (r *record) transcripts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.typed...)
}

type interrupter struct {
	rt   pipeline.Runtime
	loud bool
}

func (i *interrupter) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	i.rt = rt
	return nil
}

func (i *interrupter) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if a, ok := f.(*frame.InputAudio); ok {
		peak := 0
		for _, s := range a.Samples {
			peak = max(peak, abs(int(s)))
		}
		if loud := peak > 8000; loud != i.loud {
			i.loud = loud
			if loud {
				n := i.rt.Interrupt("caller spoke")
				out.Emit(&frame.Interruption{Meta: frame.Meta{Turn: n}, Reason: "caller spoke"})
			}
		}
	}
	out.Pass(f)
	return nil
}

// replyLevel is the bot's voice: every sample is this value.
const replyLevel = 4000

type bot struct{ out frame.Format }

func (b bot) Name() string { return "bot" }

func (b bot) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	tr, ok := f.(*frame.Transcript)
	if !ok || !tr.Final {
		out.Pass(f)
		return nil
	}
	d, text := 300*time.Millisecond, "answer to "+tr.Text
	switch tr.Text {
	case "DTMF: 9#":
		d = 5 * time.Second
	case "DTMF: 0#":
		text = "goodbye"
	}
	out.Emit(&frame.TTSText{Text: text})
	chunk, n := b.out.Samples(20*time.Millisecond), b.out.Samples(d)
	for sent := 0; sent < n; sent += chunk {
		pcm := make([]int16, min(chunk, n-sent))
		for i := range pcm {
			pcm[i] = replyLevel
		}
		a := &frame.OutputAudio{Format: b.out, Samples: pcm}
		if sent+chunk >= n {
			a.Spoken = text
		}
		out.Emit(a)
	}
	if tr.Text == "DTMF: 0#" {
		out.Emit(&frame.End{Reason: "agent ended the call"})
	}
	return nil
}

// factory runs the fake pipeline as session.Builder.Run does.
type factory struct {
	runs chan *record
}

func newFactory() *factory { return &factory{runs: make(chan *record, 8)} }

func (fa *factory) run(ctx context.Context, s *transport.Session) (err error) {
	r := &record{done: make(chan struct{})}
	fa.runs <- r
	defer func() {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(r.done)
	}()
	p := pipeline.New(pipeline.Options{Observers: []pipeline.Observer{s.Observer}}, s.Input, r, &interrupter{}, bot{out: s.Out}, s.Output)
	return transport.Run(ctx, s, p)
}

// restCall is one request the fake call-control API received.
type restCall struct {
	method, path, auth, ctype, body string
}

// fakeAPI is a vendor's REST API that records every request.
type fakeAPI struct {
	srv    *httptest.Server
	refuse atomic.Bool // answer 404 to every request
	mu     sync.Mutex
	reqs   []restCall
}

func newFakeAPI(t *testing.T) *fakeAPI {
	a := &fakeAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, restCall{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		a.mu.Unlock()
		if a.refuse.Load() {
			http.Error(w, "no such call", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "{}")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAPI) calls() []restCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]restCall(nil), a.reqs...)
}

// out is one message the edge sent, as the fake carrier reads it.
type out struct {
	kind string // "media", "mark", "clear"
	pcm  []int16
	name string
}

// wire is the carrier side of a vendor's protocol, for the fake carrier.
type wire struct {
	v      Vendor
	rate   int
	start  []string // text messages that open the stream
	query  string   // of the stream's URL
	media  func(pcm []int16) (binary bool, data []byte)
	dtmf   func(d byte) string
	stop   string // "" when the vendor has no stop message
	ack    func(name string) string
	parse  func(t *testing.T, binary bool, data []byte) out
	hangup restCall // the request expected ("" method: none)
	setenv map[string]string
}

func jsonOut(t *testing.T, data []byte, media func(map[string]any) string, law func([]byte) []int16) out {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("edge sent %q: %v", data, err)
	}
	ev, _ := m["event"].(string)
	if a, ok := m["action"].(string); ok {
		ev = a
	}
	switch ev {
	case "media", "playAudio":
		b, err := base64.StdEncoding.DecodeString(media(m))
		if err != nil {
			t.Fatalf("payload of %s: %v", data, err)
		}
		return out{kind: "media", pcm: law(b)}
	case "mark":
		return out{kind: "mark", name: m["mark"].(map[string]any)["name"].(string)}
	case "checkpoint":
		return out{kind: "mark", name: m["name"].(string)}
	case "notify":
		return out{kind: "mark", name: m["payload"].(map[string]any)["name"].(string)}
	case "clear", "clearAudio":
		return out{kind: "clear"}
	}
	t.Fatalf("edge sent an unknown message %s", data)
	return out{}
}

func mediaPayload(m map[string]any) string { return m["media"].(map[string]any)["payload"].(string) }

func ulawPCMOf(b []byte) []int16 { return audio.DecodeULaw(nil, b) }
func alawPCMOf(b []byte) []int16 { return audio.DecodeALaw(nil, b) }
func l16PCMOf(b []byte) []int16  { p, _ := audio.DecodePCM16(nil, b); return p }

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func wires() []wire {
	return []wire{{
		v: Twilio, rate: 8000,
		start: []string{
			`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
			`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}`,
		},
		media: func(pcm []int16) (bool, []byte) {
			return false, []byte(`{"event":"media","media":{"track":"inbound","payload":"` + b64s(audio.EncodeULaw(nil, pcm)) + `"},"streamSid":"MZ1"}`)
		},
		dtmf: func(d byte) string {
			return `{"event":"dtmf","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"` + string(d) + `"}}`
		},
		stop: `{"event":"stop","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`,
		ack:  func(n string) string { return `{"event":"mark","streamSid":"MZ1","mark":{"name":"` + n + `"}}` },
		parse: func(t *testing.T, _ bool, data []byte) out {
			return jsonOut(t, data, mediaPayload, ulawPCMOf)
		},
		hangup: restCall{method: "POST", path: "/2010-04-01/Accounts/AC1/Calls/CA1.json", auth: "Basic QUMxOnR3LXNlY3JldA==", ctype: "application/x-www-form-urlencoded", body: "Status=completed"},
		setenv: map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tw-secret"},
	}, {
		v: Telnyx, rate: 8000,
		start: []string{
			`{"event":"connected","version":"1.0.0"}`,
			`{"event":"start","sequence_number":"1","start":{"user_id":"u1","call_control_id":"v3:cc1","media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}},"stream_id":"s1"}`,
		},
		media: func(pcm []int16) (bool, []byte) {
			return false, []byte(`{"event":"media","media":{"track":"inbound","payload":"` + b64s(audio.EncodeALaw(nil, pcm)) + `"},"stream_id":"s1"}`)
		},
		dtmf: func(d byte) string { return `{"event":"dtmf","stream_id":"s1","dtmf":{"digit":"` + string(d) + `"}}` },
		stop: `{"event":"stop","stop":{"call_control_id":"v3:cc1"},"stream_id":"s1"}`,
		ack:  func(n string) string { return `{"event":"mark","stream_id":"s1","mark":{"name":"` + n + `"}}` },
		parse: func(t *testing.T, _ bool, data []byte) out {
			return jsonOut(t, data, mediaPayload, alawPCMOf)
		},
		hangup: restCall{method: "POST", path: "/v2/calls/v3:cc1/actions/hangup", auth: "Bearer tx-key", ctype: "application/json", body: "{}"},
		setenv: map[string]string{"TELNYX_API_KEY": "tx-key"},
	}, {
		v: Plivo, rate: 16000,
		start: []string{
			`{"event":"start","sequenceNumber":1,"start":{"callId":"pc1","streamId":"ps1","accountId":"MA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}}}`,
		},
		media: func(pcm []int16) (bool, []byte) {
			return false, []byte(`{"event":"media","streamId":"ps1","media":{"track":"inbound","payload":"` + b64s(audio.EncodePCM16(nil, pcm)) + `"}}`)
		},
		dtmf: func(d byte) string { return `{"event":"dtmf","streamId":"ps1","dtmf":{"digit":"` + string(d) + `"}}` },
		ack:  func(n string) string { return `{"event":"playedStream","streamId":"ps1","name":"` + n + `"}` },
		parse: func(t *testing.T, _ bool, data []byte) out {
			return jsonOut(t, data, mediaPayload, l16PCMOf)
		},
		hangup: restCall{method: "DELETE", path: "/v1/Account/MA1/Call/pc1/", auth: "Basic TUExOnBsLXNlY3JldA=="},
		setenv: map[string]string{"PLIVO_AUTH_ID": "MA1", "PLIVO_AUTH_TOKEN": "pl-secret"},
	}, {
		v: Vonage, rate: 16000, query: "?call_id=vu1",
		start: []string{`{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}`},
		media: func(pcm []int16) (bool, []byte) { return true, audio.EncodePCM16(nil, pcm) },
		dtmf:  func(d byte) string { return `{"event":"websocket:dtmf","digit":"` + string(d) + `","duration":100}` },
		ack:   func(n string) string { return `{"event":"websocket:notify","payload":{"name":"` + n + `"}}` },
		parse: func(t *testing.T, binary bool, data []byte) out {
			if binary {
				if len(data) != 640 {
					t.Errorf("Vonage audio message of %d bytes, want 640", len(data))
				}
				return out{kind: "media", pcm: l16PCMOf(data)}
			}
			return jsonOut(t, data, nil, nil)
		},
		hangup: restCall{method: "PUT", path: "/v1/calls/vu1", ctype: "application/json", body: `{"action":"hangup"}`},
		setenv: map[string]string{"VONAGE_APPLICATION_ID": "app-1", "VONAGE_PRIVATE_KEY": ""},
	}, {
		v: Exotel, rate: 8000,
		start: []string{
			`{"event":"connected"}`,
			`{"event":"start","sequence_number":"1","stream_sid":"MZe","start":{"stream_sid":"MZe","call_sid":"CAe","account_sid":"ACe","media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}`,
		},
		media: func(pcm []int16) (bool, []byte) {
			return false, []byte(`{"event":"media","stream_sid":"MZe","media":{"payload":"` + b64s(audio.EncodePCM16(nil, pcm)) + `"}}`)
		},
		dtmf: func(d byte) string {
			return `{"event":"dtmf","stream_sid":"MZe","dtmf":{"digit":"` + string(d) + `","duration":"100"}}`
		},
		stop: `{"event":"stop","stream_sid":"MZe","stop":{"call_sid":"CAe","reason":"callended"}}`,
		ack:  func(n string) string { return `{"event":"mark","stream_sid":"MZe","mark":{"name":"` + n + `"}}` },
		parse: func(t *testing.T, _ bool, data []byte) out {
			return jsonOut(t, data, mediaPayload, l16PCMOf)
		},
	}}
}

// caller is the fake carrier's side of one call.
type caller struct {
	t    *testing.T
	w    wire
	ws   *gws.Conn
	outs chan out
	gone chan struct{} // closed when the edge closed the socket
}

const readTimeout = 20 * time.Second

func dialCarrier(t *testing.T, url string, w wire) *caller {
	t.Helper()
	ws, resp, err := gws.DefaultDialer.Dial(url+w.query, nil)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, st)
	}
	c := &caller{t: t, w: w, ws: ws, outs: make(chan out, 4096), gone: make(chan struct{})}
	t.Cleanup(func() { ws.Close() })
	go func() {
		defer close(c.gone)
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			c.outs <- w.parse(t, typ == gws.BinaryMessage, data)
		}
	}()
	for _, m := range w.start {
		c.sendText(m)
	}
	return c
}

func (c *caller) sendText(m string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(gws.TextMessage, []byte(m)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// speak sends d of caller audio at level, in 20 ms messages, in real time.
func (c *caller) speak(d time.Duration, level int16) {
	c.t.Helper()
	n := c.w.rate / 50
	for range int(d / (20 * time.Millisecond)) {
		pcm := make([]int16, n)
		for i := range pcm {
			pcm[i] = level
			if i%2 == 1 {
				pcm[i] = -level
			}
		}
		bin, data := c.w.media(pcm)
		typ := gws.TextMessage
		if bin {
			typ = gws.BinaryMessage
		}
		if err := c.ws.WriteMessage(typ, data); err != nil {
			c.t.Fatalf("send audio: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *caller) keys(s string) {
	for i := range len(s) {
		c.sendText(c.w.dtmf(s[i]))
	}
}

// next returns the edge's next message.
func (c *caller) next() out {
	c.t.Helper()
	select {
	case o := <-c.outs:
		return o
	case <-c.gone:
		select {
		case o := <-c.outs:
			return o
		default:
		}
		c.t.Fatal("edge closed the stream")
	case <-time.After(readTimeout):
		c.t.Fatal("no message from the edge")
	}
	return out{}
}

// answer reads one answer: its audio, up to the mark that ends it, which
// it echoes as the carrier does once the audio has played.
func (c *caller) answer() (samples int) {
	c.t.Helper()
	for {
		o := c.next()
		switch o.kind {
		case "media":
			for _, s := range o.pcm {
				if s != 0 && abs(int(s)-replyLevel) > replyLevel/8 {
					c.t.Fatalf("answer sample %d, want about %d", s, replyLevel)
				}
			}
			samples += len(o.pcm)
		case "mark":
			c.sendText(c.w.ack(o.name))
			return samples
		case "clear":
			c.t.Fatal("clear during an answer nobody interrupted")
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(readTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testKey is a throwaway RSA key for signing the Vonage JWT in tests.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
})

func testKeyPEM() string {
	b, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}))
}

// checkJWT verifies a Vonage application JWT against the test key.
func checkJWT(t *testing.T, auth, app string) {
	t.Helper()
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		t.Fatalf("authorization %q is not a bearer JWT", auth)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&testKey().PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("JWT signature: %v", err)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		App string `json:"application_id"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
		Jti string `json:"jti"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.App != app || c.Exp <= c.Iat || c.Jti == "" {
		t.Fatalf("JWT claims %s (%v), want application_id %s", claims, err, app)
	}
}

func dialNoFail(url string) (*gws.Conn, *http.Response, error) {
	ws, resp, err := gws.DefaultDialer.Dial(url, nil)
	if ws != nil {
		ws.Close()
	}
	return ws, resp, err
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
