package rtvi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// recorder collects what a Bridge sends, and checks each is one RTVI
// message.
type recorder struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []sent
}

type sent struct {
	msg      []byte
	optional bool
}

func (r *recorder) send(msg []byte, optional bool) {
	var m Message
	if err := json.Unmarshal(msg, &m); err != nil || m.Label != Label || m.Type == "" || m.ID == "" {
		r.t.Errorf("sent %q: not an RTVI message (%v)", msg, err)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, sent{msg, optional})
	r.mu.Unlock()
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

// pusher records the frames pushed into the pipeline.
type pusher struct {
	frames []frame.Frame
	err    error
}

func (p *pusher) Push(_ context.Context, f frame.Frame) error {
	p.frames = append(p.frames, f)
	return p.err
}

func newTestBridge(t *testing.T) (*Bridge, *recorder) {
	r := &recorder{t: t}
	var n atomic.Int64
	b := NewBridge(Config{
		SessionID: "s1",
		Metadata:  json.RawMessage(`{"user":"ada"}`),
		Send:      r.send,
		About:     About{Library: "voiced", LibraryVersion: "test"},
		Now:       func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 600e6, time.UTC) },
		NewID:     func() string { return fmt.Sprintf("srv%05d", n.Add(1)) },
	})
	return b, r
}

// golden compares what was sent with testdata/name.jsonl (one message per
// line, "optional " before an optional one).
func golden(t *testing.T, name string, got []sent) {
	t.Helper()
	var buf bytes.Buffer
	for _, s := range got {
		if s.optional {
			buf.WriteString("optional ")
		}
		buf.Write(s.msg)
		buf.WriteByte('\n')
	}
	path := filepath.Join("testdata", name+".jsonl")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s: sent\n%s\nwant\n%s", name, buf.Bytes(), want)
	}
}

// TestGoldenServerMessages covers every message the server sends, each
// from the frames (or the client message) that cause it.
func TestGoldenServerMessages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []frame.Frame
		client string // a client message handled before the frames
	}{
		{name: "bot-ready", client: `{"label":"rtvi-ai","type":"client-ready","id":"c1","data":{"version":"2.1.0","about":{"library":"@pipecat-ai/client-js","library_version":"1.13.1"}}}`},
		{name: "speaking", frames: []frame.Frame{
			&frame.UserStartedSpeaking{}, &frame.UserStoppedSpeaking{},
			&frame.BotStartedSpeaking{}, &frame.BotStoppedSpeaking{},
		}},
		{name: "user-transcription", frames: []frame.Frame{
			&frame.Transcript{Text: "what is the"},
			&frame.Transcript{Text: "what is the weather", Final: true},
			&frame.Transcript{Text: "typed words", Final: true, Typed: true},
			&frame.Transcript{Text: ""},
		}},
		{name: "bot-llm", frames: []frame.Frame{
			&frame.LLMResponseStart{}, &frame.LLMText{Text: "It is "}, &frame.LLMText{Text: "sunny."}, &frame.LLMResponseEnd{},
		}},
		{name: "bot-output", frames: []frame.Frame{
			&frame.TTSText{Meta: frame.Meta{Turn: 2}, Text: "It is sunny."},
			&frame.TTSText{Meta: frame.Meta{Turn: 2}, Text: "Take a hat  today."},
			&frame.BotStartedSpeaking{Meta: frame.Meta{Turn: 2}},
			&frame.BotSpoke{Meta: frame.Meta{Turn: 2}, Text: "It is sunny."},
			&frame.BotSpoke{Meta: frame.Meta{Turn: 2}, Text: "Take a"},
			&frame.BotStoppedSpeaking{Meta: frame.Meta{Turn: 2}, Interrupted: true},
		}},
		{name: "bot-output-skipped", frames: []frame.Frame{
			// The first sentence of turn 3 was dropped unplayed; the
			// second played; the playout reports a sentence never
			// announced.
			&frame.TTSText{Meta: frame.Meta{Turn: 3}, Text: "One."},
			&frame.TTSText{Meta: frame.Meta{Turn: 3}, Text: "Two."},
			&frame.BotSpoke{Meta: frame.Meta{Turn: 3}, Text: "Two."},
			&frame.BotSpoke{Meta: frame.Meta{Turn: 3}, Text: "Three."},
		}},
		{name: "bot-output-text-only", frames: []frame.Frame{
			// An answer to send-text with audio_response false: its
			// sentences are shown, never spoken; a deferred message
			// is not announced; a spoken answer after it is as usual.
			&frame.Transcript{Meta: frame.Meta{Turn: 5}, Text: "note this", Final: true, Typed: true, Deferred: true},
			&frame.Transcript{Meta: frame.Meta{Turn: 5}, Text: "spell it", Final: true, Typed: true, TextOnly: true},
			&frame.LLMResponseStart{Meta: frame.Meta{Turn: 5}, TextOnly: true},
			&frame.LLMText{Meta: frame.Meta{Turn: 5}, Text: "It is C-A"},
			&frame.LLMText{Meta: frame.Meta{Turn: 5}, Text: "-T. Anything"},
			&frame.LLMText{Meta: frame.Meta{Turn: 5}, Text: " else?"},
			&frame.LLMResponseEnd{Meta: frame.Meta{Turn: 5}},
			&frame.LLMResponseStart{Meta: frame.Meta{Turn: 6}},
			&frame.LLMText{Meta: frame.Meta{Turn: 6}, Text: "Said. "},
			&frame.LLMResponseEnd{Meta: frame.Meta{Turn: 6}},
			// Cut off: what was written is shown.
			&frame.LLMResponseStart{Meta: frame.Meta{Turn: 7}, TextOnly: true},
			&frame.LLMText{Meta: frame.Meta{Turn: 7}, Text: "Half a"},
			&frame.Interruption{Meta: frame.Meta{Turn: 8}},
			&frame.LLMText{Meta: frame.Meta{Turn: 7}, Text: " sentence."},
		}},
		{name: "function-call", frames: []frame.Frame{
			&frame.ToolCall{Agent: "a", Name: "get_weather", CallID: "call_1", Arguments: `{"city":"Paris"}`},
			&frame.ToolResult{Agent: "a", Name: "get_weather", CallID: "call_1"},
			&frame.ToolCall{Agent: "a", Name: "broken", CallID: "call_2", Arguments: `not json`},
			&frame.ToolResult{Agent: "a", Name: "broken", CallID: "call_2", Err: "timeout"},
		}},
		{name: "metrics", frames: []frame.Frame{
			&frame.Metrics{Latency: frame.TurnMetrics{
				Turn: 4, Endpointing: 200 * time.Millisecond, STTFinal: 250 * time.Millisecond,
				LLMFirst: 400 * time.Millisecond, SentenceTTS: 450 * time.Millisecond,
				TTSFirst: 520 * time.Millisecond, AudioOut: 530 * time.Millisecond, VoiceToVoice: 530 * time.Millisecond,
				EndpointDelay: 50 * time.Millisecond,
			}},
		}},
		{name: "server-message-handoff", frames: []frame.Frame{&frame.Handoff{From: "triage", To: "billing"}}},
		{name: "error", frames: []frame.Frame{
			&frame.Error{Err: errors.New("tts: provider down"), Fatal: true},
			&frame.Error{Err: errors.New("stt: slow"), Fatal: false},
			&frame.Error{},
			&frame.Error{Err: fmt.Errorf("stt: send: %w", context.Canceled)},
		}},
		{name: "server-response", client: `{"label":"rtvi-ai","type":"client-message","id":"c2","data":{"t":"session"}}`},
		{name: "error-response-unknown-type", client: `{"label":"rtvi-ai","type":"update-config","id":"c3","data":{}}`},
		{name: "error-response-unknown-t", client: `{"label":"rtvi-ai","type":"client-message","id":"c4","data":{"t":"dance","d":{"x":1}}}`},
		{name: "error-response-bad-data", client: `{"label":"rtvi-ai","type":"send-text","id":"c5","data":{"content":5}}`},
		{name: "error-response-function-result", client: `{"label":"rtvi-ai","type":"llm-function-call-result","id":"c7","data":{"function_name":"get_weather","tool_call_id":"call_1","arguments":{"city":"Paris"},"result":{"sky":"clear"}}}`},
		{name: "error-response-bad-dtmf", client: `{"label":"rtvi-ai","type":"dtmf","id":"c6","data":{"buttons":["1","X"]}}`},
		{name: "error-fatal", frames: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, r := newTestBridge(t)
			if tc.client != "" {
				var p pusher
				if _, err := b.Handle(context.Background(), &p, []byte(tc.client)); err != nil {
					t.Fatal(err)
				}
				if len(p.frames) != 0 {
					t.Errorf("pushed %d frames", len(p.frames))
				}
			}
			for _, f := range tc.frames {
				b.OnHop(pipeline.Hop{Frame: f, First: true})
				b.OnHop(pipeline.Hop{Frame: f}) // relayed: nothing more
			}
			got := r.take()
			if tc.name == "error-fatal" {
				got = []sent{{msg: ErrorMessage("slow_client", transport.ErrSlowClient)}}
				var m Message
				json.Unmarshal(got[0].msg, &m)
				got[0].msg = bytes.Replace(got[0].msg, []byte(m.ID), []byte("srv00001"), 1)
			}
			golden(t, tc.name, got)
		})
	}
}

func TestBotReadyAnswersClientReady(t *testing.T) {
	b, r := newTestBridge(t)
	if b.Ready() {
		t.Fatal("ready before client-ready")
	}
	var p pusher
	b.Handle(context.Background(), &p, []byte(`{"label":"rtvi-ai","type":"client-ready","id":"abcd1234","data":{"version":"2.1.0","about":{"library":"x"}}}`))
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("sent %d messages", len(got))
	}
	var m Message
	var d BotReady
	json.Unmarshal(got[0].msg, &m)
	json.Unmarshal(m.Data, &d)
	if m.Type != TypeBotReady || m.ID != "abcd1234" || d.Version != "2.1.0" || !b.Ready() {
		t.Errorf("answered %s (ready %v)", got[0].msg, b.Ready())
	}
}

func TestHandlePushes(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      []string
		done      bool
	}{
		{"send-text", `{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"  what time is it? ","options":{"run_immediately":true}}}`,
			[]string{`transcript "what time is it?" final typed`}, false},
		{"send-text-blank", `{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"  "}}`, nil, false},
		{"send-text-later", `{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"my name is Ada","options":{"run_immediately":false}}}`,
			[]string{`transcript "my name is Ada" final typed deferred`}, false},
		{"send-text-text-only", `{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"spell cat","options":{"run_immediately":true,"audio_response":false}}}`,
			[]string{`transcript "spell cat" final typed text-only`}, false},
		{"send-text-defaults", `{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"hi","options":{}}}`,
			[]string{`transcript "hi" final typed`}, false},
		{"dtmf", `{"label":"rtvi-ai","type":"dtmf","id":"1","data":{"buttons":["1","2","#"]}}`,
			[]string{"dtmf 1", "dtmf 2", "dtmf #", `transcript "DTMF: 12#" final typed`}, false},
		{"disconnect-bot", `{"label":"rtvi-ai","type":"disconnect-bot","id":"1","data":{}}`, []string{"end"}, true},
		{"other-label", `{"label":"other","type":"disconnect-bot","id":"1"}`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, r := newTestBridge(t)
			var p pusher
			done, err := b.Handle(context.Background(), &p, []byte(tc.msg))
			if err != nil || done != tc.done {
				t.Fatalf("Handle = %v, %v; want %v, nil", done, err, tc.done)
			}
			var got []string
			for _, f := range p.frames {
				switch f := f.(type) {
				case *frame.Transcript:
					s := fmt.Sprintf("transcript %q", f.Text)
					if f.Final {
						s += " final"
					}
					if f.Typed {
						s += " typed"
					}
					if f.Deferred {
						s += " deferred"
					}
					if f.TextOnly {
						s += " text-only"
					}
					got = append(got, s)
				case *frame.DTMF:
					got = append(got, "dtmf "+string(f.Digit))
				case *frame.End:
					got = append(got, "end")
				default:
					got = append(got, fmt.Sprintf("%T", f))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("pushed %q, want %q", got, tc.want)
			}
			if s := r.take(); len(s) != 0 {
				t.Errorf("sent %s", s[0].msg)
			}
		})
	}
}

func TestHandleBadInput(t *testing.T) {
	for _, tc := range []struct{ msg, code string }{
		{`hello`, "invalid_json"},
		{`["rtvi-ai"]`, "invalid_json"},
		{`{"label":"rtvi-ai",`, "invalid_json"},
		{"{\"label\":\"\xff\"}", "invalid_utf8"},
		{`{"label":"rtvi-ai","type":"send-text","data":{"content":"` + strings.Repeat("a", MaxMessage) + `"}}`, "too_large"},
	} {
		b, r := newTestBridge(t)
		var p pusher
		_, err := b.Handle(context.Background(), &p, []byte(tc.msg))
		var pe *transport.ProtocolError
		if !errors.As(err, &pe) || pe.Code != tc.code || !errors.Is(err, transport.ErrBadInput) {
			t.Errorf("Handle(%.40q) = %v, want a %s protocol error", tc.msg, err, tc.code)
		}
		if len(p.frames) != 0 || len(r.take()) != 0 {
			t.Errorf("Handle(%.40q) pushed or sent something", tc.msg)
		}
	}
}

func TestHandleSendTextTooLong(t *testing.T) {
	b, r := newTestBridge(t)
	var p pusher
	msg := `{"label":"rtvi-ai","type":"send-text","id":"long","data":{"content":"` + strings.Repeat("a", transport.MaxText+1) + `"}}`
	if _, err := b.Handle(context.Background(), &p, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := r.take()
	if len(p.frames) != 0 || len(got) != 1 || !bytes.Contains(got[0].msg, []byte(`"type":"error-response","id":"long"`)) {
		t.Errorf("pushed %d frames, sent %d messages", len(p.frames), len(got))
	}
}

func TestClientMessageHook(t *testing.T) {
	r := &recorder{t: t}
	b := NewBridge(Config{Send: r.send, ClientMessage: func(_ context.Context, typ string, d json.RawMessage) (any, error) {
		if typ == "echo" {
			return d, nil
		}
		return nil, errors.New("no")
	}})
	var p pusher
	b.Handle(context.Background(), &p, []byte(`{"label":"rtvi-ai","type":"client-message","id":"e1","data":{"t":"echo","d":{"n":7}}}`))
	b.Handle(context.Background(), &p, []byte(`{"label":"rtvi-ai","type":"client-message","id":"e2","data":{"t":"nope"}}`))
	got := r.take()
	if len(got) != 2 {
		t.Fatalf("sent %d", len(got))
	}
	if !bytes.Contains(got[0].msg, []byte(`"type":"server-response","id":"e1","data":{"t":"echo","d":{"n":7}}`)) {
		t.Errorf("echo answered %s", got[0].msg)
	}
	if !bytes.Contains(got[1].msg, []byte(`"type":"error-response","id":"e2","data":{"error":"no"}`)) {
		t.Errorf("nope answered %s", got[1].msg)
	}
}

// TestBridgeConcurrent notifies from several goroutines while the client's
// messages are handled, as a pipeline's stages and an edge's reader do.
func TestBridgeConcurrent(t *testing.T) {
	b, r := newTestBridge(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				turn := uint32(g)
				b.OnHop(pipeline.Hop{First: true, Frame: &frame.TTSText{Meta: frame.Meta{Turn: turn}, Text: fmt.Sprintf("S %d.", i)}})
				b.OnHop(pipeline.Hop{First: true, Frame: &frame.BotSpoke{Meta: frame.Meta{Turn: turn}, Text: fmt.Sprintf("S %d.", i)}})
				b.OnHop(pipeline.Hop{First: true, Frame: &frame.BotStoppedSpeaking{}})
			}
		})
	}
	wg.Go(func() {
		var p pusher
		for range 50 {
			b.Handle(context.Background(), &p, []byte(`{"label":"rtvi-ai","type":"client-message","id":"x","data":{"t":"session"}}`))
		}
	})
	wg.Wait()
	spoken := 0
	for _, s := range r.take() {
		if bytes.Contains(s.msg, []byte(`"spoken":true,"spoken_status":"completed"`)) {
			spoken++
		}
	}
	if spoken != 200 {
		t.Errorf("%d sentences reported spoken, want 200", spoken)
	}
}
