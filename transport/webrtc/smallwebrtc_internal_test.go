package webrtc

import (
	"errors"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

// FuzzSmallRequest: whatever a client POSTs or PATCHes, decoding it gives
// the request or a 4xx that names no Go type, and never panics.
func FuzzSmallRequest(f *testing.F) {
	f.Add([]byte(`{"sdp":"v=0\r\n","type":"offer","pc_id":null,"restart_pc":false}`))
	f.Add([]byte(`{"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n","type":"offer","pc_id":"x","restart_pc":true,"requestData":{"a":1}}`))
	f.Add([]byte(`{"pc_id":"x","candidates":[{"candidate":"","sdp_mid":"0","sdp_mline_index":0}]}`))
	f.Add([]byte(`{"pc_id":"x","candidates":[{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdp_mid":null,"sdp_mline_index":null}]}`))
	f.Add([]byte(`{"type":"offer"} {}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			var he *httpError
			if !errors.As(err, &he) || he.status < 400 || he.status >= 500 {
				t.Fatalf("error %v is not a 4xx", err)
			}
			if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "webrtc.") {
				t.Fatalf("error %q names Go types", err)
			}
		}
		var o offerRequest
		err := decodeStrict(data, "offer", &o)
		check(err)
		if err == nil {
			offerSendsAudio(o.SDP)
			if err := checkOffer(o.SDP); err != nil && strings.Contains(err.Error(), "panic") {
				t.Fatal(err)
			}
		}
		var p patchRequest
		check(decodeStrict(data, "candidates", &p))
	})
}

// FuzzChatSignal: a signalling message from the client ends the session
// with a protocol error or is handled; it never panics, and only a
// trackStatus can queue anything (renegotiate).
func FuzzChatSignal(f *testing.F) {
	f.Add([]byte(`{"type":"signalling","message":{"type":"trackStatus","receiver_index":0,"enabled":true}}`))
	f.Add([]byte(`{"type":"signalling","message":{"type":"trackStatus","receiver_index":1,"enabled":false}}`))
	f.Add([]byte(`{"type":"signalling","message":{"type":"trackStatus"}}`))
	f.Add([]byte(`{"type":"signalling","message":"x"}`))
	f.Add([]byte(`{"type":"signalling"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isSignalling(data) {
			return
		}
		c := &smallConn{Conn: transport.NewConn(transport.ConnConfig{Kind: SmallKind})}
		err := c.signal(data)
		if err != nil {
			var pe *transport.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a protocol error", err)
			}
		}
		select {
		case m := <-c.Outgoing():
			if string(m.Data) != string(renegotiateMsg) {
				t.Fatalf("queued %s", m.Data)
			}
		default:
		}
	})
}
