package sip

import (
	"errors"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzMessage feeds whole SIP messages, as they come off the wire, through
// the parser the server uses (sipgo's) and then through voiced's own
// decoding of what a request carries: the SDP offer of an INVITE and the
// key of an INFO. Neither may panic; a decoded offer has a usable stream
// and a decoded key is a DTMF key.
func FuzzMessage(f *testing.F) {
	offer := sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000")
	f.Add([]byte("INVITE sip:demo@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n" +
		"From: <sip:alice@10.0.0.1>;tag=1928301774\r\nTo: <sip:demo@127.0.0.1>\r\n" +
		"Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + itoa(len(offer)) + "\r\n\r\n" + string(offer)))
	f.Add([]byte("INFO sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:demo@127.0.0.1>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INFO\r\n" +
		"Content-Type: application/dtmf-relay\r\nContent-Length: 22\r\n\r\nSignal=5\r\nDuration=160\r\n"))
	f.Add([]byte("BYE sip:demo@127.0.0.1 SIP/2.0\r\nContent-Length: -1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := sip.NewParser().ParseSIP(b)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.Source() // the per-address limit reads it
		switch req.Method {
		case sip.INVITE:
			o, err := parseOffer(req.Body(), nil)
			if err != nil {
				if !errors.Is(err, ErrNoCodec) && !errors.Is(err, ErrBadSDP) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !o.addr.IsValid() || o.addr.Port() == 0 {
				t.Fatalf("accepted offer without a usable stream: %+v", o)
			}
		case sip.INFO:
			ct := ""
			if h := req.ContentType(); h != nil {
				ct = h.Value()
			}
			if d, err := parseDTMFInfo(ct, req.Body()); err == nil && !dtmfKey(d) {
				t.Fatalf("INFO gave key %q", d)
			}
		}
	})
}
