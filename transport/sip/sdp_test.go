package sip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// sdpOf writes a session description: a leading c= line is the
// session's, the rest follow t=.
func sdpOf(lines ...string) []byte {
	head := []string{"v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-"}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "c=") {
		head, lines = append(head, lines[0]), lines[1:]
	}
	head = append(head, "t=0 0")
	return []byte(strings.Join(append(head, lines...), "\r\n") + "\r\n")
}

func TestParseOffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   []byte
		prefer *codec
		want   codec
		pt     uint8
		dtmf   uint8
		addr   string
		dir    Direction
		hold   bool
		err    error
	}{
		{name: "PCMU and PCMA, offerer prefers PCMU",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"),
			want: pcmu, pt: 0, dtmf: 101, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "offerer prefers PCMA",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 8 0"),
			want: pcma, pt: 8, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "a re-INVITE keeps the codec in use",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8"), prefer: &pcma,
			want: pcma, pt: 8, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "opus and G.722 first, G.711 after: G.722",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 111 9 8 96", "a=rtpmap:111 opus/48000/2", "a=rtpmap:9 G722/8000", "a=rtpmap:96 telephone-event/8000"),
			want: g722, pt: 9, dtmf: 96, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "G.722 offered after PCMU is still preferred",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8 9 101", "a=rtpmap:101 telephone-event/8000"),
			want: g722, pt: 9, dtmf: 101, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "G.722 without rtpmap (static payload type)",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 9"),
			want: g722, pt: 9, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "G.722 with the wrong clock rate is not G.722",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 96 0", "a=rtpmap:96 G722/16000"),
			want: pcmu, pt: 0, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "G.722 not offered: PCMU",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"),
			want: pcmu, pt: 0, dtmf: 101, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "a re-INVITE of a G.711 call stays at 8 kHz",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 9 8"), prefer: &pcmu,
			want: pcma, pt: 8, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "a re-INVITE of a G.722 call keeps G.722",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 9"), prefer: &g722,
			want: g722, pt: 9, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "a re-INVITE without G.722 moves a G.722 call to G.711", prefer: &g722,
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8"),
			want: pcmu, pt: 0, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "a re-INVITE with only G.722 moves a G.711 call to it", prefer: &pcma,
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 9"),
			want: g722, pt: 9, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "media-level address and direction win",
			body: sdpOf("c=IN IP4 10.0.0.1", "a=sendrecv", "m=audio 4000 RTP/AVP 0", "c=IN IP4 10.0.0.2", "a=sendonly"),
			want: pcmu, pt: 0, addr: "10.0.0.2:4000", dir: SendOnly, hold: true},
		{name: "inactive holds",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0", "a=inactive"),
			want: pcmu, pt: 0, addr: "10.0.0.1:4000", dir: Inactive, hold: true},
		{name: "RFC 2543 hold",
			body: sdpOf("c=IN IP4 0.0.0.0", "m=audio 4000 RTP/AVP 0"),
			want: pcmu, pt: 0, addr: "0.0.0.0:4000", dir: SendRecv, hold: true},
		{name: "video first, audio second",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 4000 RTP/AVP 0"),
			want: pcmu, pt: 0, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "IPv6",
			body: sdpOf("c=IN IP6 ::1", "m=audio 4000 RTP/AVP 0"),
			want: pcmu, pt: 0, addr: "[::1]:4000", dir: SendRecv},
		{name: "PCMU renumbered dynamically",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 100", "a=rtpmap:100 PCMU/8000"),
			want: pcmu, pt: 100, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "only opus: Opus",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 96 101 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000", "a=rtpmap:97 telephone-event/48000"),
			want: opusCodec, pt: 96, dtmf: 97, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "Opus without a 48 kHz telephone-event has no keys",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 96 101", "a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000"),
			want: opusCodec, pt: 96, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "Opus before G.711: Opus",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 111", "a=rtpmap:111 opus/48000/2"),
			want: opusCodec, pt: 111, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "G.722 before Opus",
			body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 111 9", "a=rtpmap:111 opus/48000/2"),
			want: g722, pt: 9, addr: "10.0.0.1:4000", dir: SendRecv},
		{name: "opus at a wrong rate", body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/16000/2"), err: ErrNoCodec},
		{name: "payload type 111 without an rtpmap is not Opus", body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 111"), err: ErrNoCodec},
		{name: "wrong rate", body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/16000"), err: ErrNoCodec},
		{name: "SRTP only", body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/SAVP 0"), err: ErrNoCodec},
		{name: "rejected stream", body: sdpOf("c=IN IP4 10.0.0.1", "m=audio 0 RTP/AVP 0"), err: ErrNoCodec},
		{name: "no address", body: sdpOf("m=audio 4000 RTP/AVP 0"), err: ErrNoCodec},
		{name: "garbage", body: []byte("hello"), err: ErrBadSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.body, tc.prefer)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.codec != tc.want || o.pt != tc.pt || o.dtmfPT != tc.dtmf || o.addr.String() != tc.addr || o.dir != tc.dir || o.hold() != tc.hold {
				t.Errorf("got %s pt %d dtmf %d at %s %s hold %v, want %s pt %d dtmf %d at %s %s hold %v",
					o.codec.name, o.pt, o.dtmfPT, o.addr, o.dir, o.hold(),
					tc.want.name, tc.pt, tc.dtmf, tc.addr, tc.dir, tc.hold)
			}
		})
	}
}

// The answer is a valid description with as many streams as the offer,
// the others rejected, and the direction that answers the offer's.
func TestAnswerMarshal(t *testing.T) {
	o, err := parseOffer(sdpOf("c=IN IP4 10.0.0.1", "m=video 5000 RTP/AVP 96", "m=audio 4000 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000", "a=sendonly"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{sessionID: 7, version: 2, addr: netip.MustParseAddr("192.0.2.10"), port: 10000,
		codec: o.codec, pt: o.pt, dtmfPT: o.dtmfPT, dir: o.dir.reverse()}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(a.marshal(o)); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, a.marshal(o))
	}
	if len(sd.MediaDescriptions) != 2 {
		t.Fatalf("%d streams, want 2", len(sd.MediaDescriptions))
	}
	if v, au := sd.MediaDescriptions[0], sd.MediaDescriptions[1]; v.MediaName.Port.Value != 0 || au.MediaName.Port.Value != 10000 {
		t.Errorf("ports video %d audio %d, want 0 and 10000", v.MediaName.Port.Value, au.MediaName.Port.Value)
	}
	back, err := parseOffer(a.marshal(o), nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.codec != pcma || back.pt != 8 || back.dtmfPT != 101 || back.dir != RecvOnly || back.addr.String() != "192.0.2.10:10000" {
		t.Errorf("answer reads back as %s pt %d dtmf %d %s at %s", back.codec.name, back.pt, back.dtmfPT, back.dir, back.addr)
	}
	if !strings.Contains(string(a.marshal(o)), "o=voiced 7 2 IN IP4 192.0.2.10") {
		t.Errorf("origin line wrong:\n%s", a.marshal(o))
	}
	// Without an offer (a re-INVITE with no SDP, a call out) voiced
	// offers all it has, G.722 first.
	offerBack, err := parseOffer(a.marshal(nil), nil)
	if err != nil || offerBack.codec != g722 || offerBack.dtmfPT != dtmfOfferPT {
		t.Errorf("offer reads back as %+v, %v", offerBack, err)
	}
	if want := "m=audio 10000 RTP/AVP 9 111 0 8 101 110\r\na=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2\r\n" +
		"a=fmtp:111 useinbandfec=1; stereo=0; sprop-stereo=0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtpmap:110 telephone-event/48000\r\n"; !strings.Contains(string(a.marshal(nil)), want) {
		t.Errorf("offer:\n%s\nwant it to contain\n%s", a.marshal(nil), want)
	}
	// The answer to a G.722 offer names it with its 8000 Hz RTP clock.
	o, err = parseOffer(sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 9 101", "a=rtpmap:101 telephone-event/8000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a = answer{addr: netip.MustParseAddr("192.0.2.10"), port: 10000, codec: o.codec, pt: o.pt, dtmfPT: o.dtmfPT, dir: SendRecv}
	if want := "m=audio 10000 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\n"; !strings.Contains(string(a.marshal(o)), want) {
		t.Errorf("answer:\n%s\nwant it to contain\n%s", a.marshal(o), want)
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add(sdpOf("c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"))
	f.Add(sdpOf("c=IN IP6 ::1", "m=audio 65535 RTP/AVP 100", "a=rtpmap:100 PCMA/8000/1", "a=inactive"))
	f.Add([]byte("v=0\r\nm=audio -1 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b, &pcma)
		if err != nil {
			if !errors.Is(err, ErrNoCodec) && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if o.codec != pcmu && o.codec != pcma || !o.addr.IsValid() || o.addr.Port() == 0 {
			t.Fatalf("accepted offer without a usable stream: %+v", o)
		}
		a := answer{addr: netip.MustParseAddr("127.0.0.1"), port: 10000, codec: o.codec, pt: o.pt, dtmfPT: o.dtmfPT, dir: o.dir.reverse()}
		var sd sdp.SessionDescription
		if err := sd.Unmarshal(a.marshal(o)); err != nil {
			t.Fatalf("answer to %q does not parse: %v\n%s", b, err, a.marshal(o))
		}
	})
}
