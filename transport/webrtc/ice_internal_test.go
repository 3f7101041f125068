package webrtc

import (
	"strings"
	"testing"
)

const fuzzOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n" +
	"a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n"

func FuzzCheckLimits(f *testing.F) {
	f.Add(fuzzOffer, 1, 1)
	f.Add(fuzzOffer+"a=candidate:2 1 udp 2130706431 192.0.2.2 5000 typ host\r\n", 1, 1)
	f.Add(fuzzOffer+"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 5, 1)
	f.Add("", 50, 4)
	f.Fuzz(func(t *testing.T, offer string, maxCand, maxSections int) {
		n, _, err := checkLimits(offer, offerLimits{maxCandidates: maxCand, maxSections: maxSections})
		if err != nil {
			return
		}
		if n > maxCand || n < 0 {
			t.Fatalf("accepted %d candidates with a limit of %d", n, maxCand)
		}
		if m := strings.Count(offer, "\nm="); m > maxSections && strings.HasPrefix(offer, "v=") {
			t.Fatalf("accepted %d media sections with a limit of %d", m, maxSections)
		}
	})
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add("a=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=candidate:garbage\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		_, cands, err := parseSDPFrag(body)
		if err != nil {
			return
		}
		want := 0
		for line := range strings.Lines(body) {
			if strings.HasPrefix(strings.TrimSpace(line), "a=candidate:") {
				want++
			}
		}
		if len(cands) != want {
			t.Fatalf("%d candidates from %d candidate lines", len(cands), want)
		}
		for _, c := range cands {
			if c.SDPMid == nil && c.SDPMLineIndex == nil {
				t.Fatalf("candidate %q has no media section", c.Candidate)
			}
		}
	})
}

func TestCheckLimits(t *testing.T) {
	many := fuzzOffer + strings.Repeat("a=candidate:2 1 udp 2130706431 192.0.2.2 5000 typ host\r\n", 50)
	sections := fuzzOffer + strings.Repeat("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", 4)
	for _, tc := range []struct {
		name, offer string
		n           int
		err         string
	}{
		{"ok", fuzzOffer, 1, ""},
		{"candidates", many, 0, "51 ICE candidates; at most 50"},
		{"sections", sections, 0, "5 media sections; at most 4"},
	} {
		n, ufrag, err := checkLimits(tc.offer, offerLimits{maxCandidates: 50, maxSections: 4})
		if tc.err == "" {
			if err != nil || n != tc.n || ufrag != "abcd" {
				t.Errorf("%s: %d candidates, ufrag %q, %v", tc.name, n, ufrag, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}
