package rtvi

import (
	"context"
	"errors"
	"testing"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"label":"rtvi-ai","type":"client-ready","id":"a1b2c3d4","data":{"version":"2.1.0","about":{"library":"@pipecat-ai/client-js","library_version":"1.13.1","platform":"Linux"}}}`,
		`{"label":"rtvi-ai","type":"send-text","id":"1","data":{"content":"hi","options":{"run_immediately":false,"audio_response":true}}}`,
		`{"label":"rtvi-ai","type":"dtmf","id":"1","data":{"buttons":["1","*","#"]}}`,
		`{"label":"rtvi-ai","type":"dtmf","id":"1","data":{"buttons":[]}}`,
		`{"label":"rtvi-ai","type":"client-message","id":"1","data":{"t":"session","d":null}}`,
		`{"label":"rtvi-ai","type":"llm-function-call-result","id":"1","data":{"function_name":"f","tool_call_id":"t","arguments":{"a":1},"result":{"ok":true}}}`,
		`{"label":"rtvi-ai","type":"disconnect-bot","id":"1","data":{}}`,
		`{"label":"rtvi-ai","type":"disconnect-bot","id":"1"}`,
		`{"label":"rtvi-ai","type":"send-text","id":"1"}`,
		`{"label":"rtvi-ai","type":"send-text","id":"1","data":null}`,
		`{"label":"rtvi-ai","type":"send-text","id":"1","data":[1]}`,
		`{"label":"rtvi-ai","type":"","id":"1"}`,
		`{"label":"rtvi-ai","type":"append-to-context","id":"1","data":{"role":"user"}}`,
		`{"label":"other","type":"client-ready"}`,
		`{"label":5}`,
		`{}`, `[]`, `null`, `ping: 12345`, ``, `{"label":"rtvi-ai"`,
		"{\"label\":\"rtvi-ai\",\"type\":\"send-text\",\"data\":{\"content\":\"\xff\"}}",
		`{"label":"rtvi-ai","type":"send-text","data":{"content":"\ud800"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		var de *DataError
		var pe *transport.ProtocolError
		switch {
		case err == nil:
			switch b := c.Body.(type) {
			case nil:
				switch c.Type {
				case TypeClientReady, TypeSendText, TypeDTMF, TypeClientMessage, TypeFunctionCallResult:
					t.Fatalf("%q decoded without its data", c.Type)
				}
			case *DTMF:
				if len(b.Buttons) == 0 {
					t.Fatal("dtmf without buttons accepted")
				}
				for _, k := range b.Buttons {
					if len(k) != 1 || !frame.DTMFDigit(k[0]) {
						t.Fatalf("dtmf key %q accepted", k)
					}
				}
			case *ClientMessage:
				if b.T == "" {
					t.Fatal("client-message without t accepted")
				}
			}
		case errors.Is(err, ErrNotRTVI), errors.As(err, &de):
		case errors.As(err, &pe):
			if !errors.Is(err, transport.ErrBadInput) {
				t.Fatalf("%v does not wrap ErrBadInput", err)
			}
		default:
			t.Fatalf("unexpected error %T %v", err, err)
		}
		// Whatever the message, handling it never panics, and pushes only
		// what a client may cause.
		b, r := newTestBridge(t)
		var p pusher
		b.Handle(context.Background(), &p, data)
		for _, f := range p.frames {
			switch f.(type) {
			case *frame.Transcript, *frame.DTMF, *frame.End:
			default:
				t.Fatalf("pushed %T", f)
			}
		}
		r.take()
	})
}
