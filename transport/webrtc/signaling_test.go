package webrtc

import (
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"text","text":"hi"}`))
	f.Add([]byte(`{"type":"end"}`))
	f.Add([]byte(`{"type":"start"}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			if _, ok := err.(*transport.ProtocolError); !ok {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if m.Type != "text" && m.Type != "end" || len(m.Text) > transport.MaxText {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("")
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		checkOffer(offer) // must not panic
	})
}
