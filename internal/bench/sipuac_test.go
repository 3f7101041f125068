package bench

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseAnswer(t *testing.T) {
	sess := "v=0\r\no=voiced 1 1 IN IP4 127.0.0.1\r\ns=voiced\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	for _, tc := range []struct {
		name, body string
		want       string // "" for an error
	}{
		{"session address", sess + "m=audio 10002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", "127.0.0.1:10002"},
		{"media address wins", sess + "m=audio 10004 RTP/AVP 0\r\nc=IN IP4 192.0.2.7\r\n", "192.0.2.7:10004"},
		{"video first", sess + "m=video 0 RTP/AVP 96\r\nm=audio 10006 RTP/AVP 0\r\n", "127.0.0.1:10006"},
		{"refused", sess + "m=audio 0 RTP/AVP 0\r\n", ""},
		{"other codec", sess + "m=audio 10008 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n", ""},
		{"no audio", sess, ""},
		{"no address", "v=0\r\no=voiced 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 10010 RTP/AVP 0\r\n", ""},
		{"not SDP", "SIP/2.0 200 OK", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer([]byte(tc.body))
			if tc.want == "" {
				if err == nil {
					t.Errorf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddrPort(tc.want) {
				t.Errorf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10002 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := parseAnswer(b); err == nil && (a.Port() == 0 || !a.Addr().IsValid()) {
			t.Errorf("accepted %q as %v", b, a)
		}
	})
}

func TestRTPPayload(t *testing.T) {
	hdr := func(b0, pt byte) []byte { return []byte{b0, pt, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4} }
	pay := []byte{1, 2, 3, 4}
	for _, tc := range []struct {
		name string
		p    []byte
		want []byte // nil: not accepted
	}{
		{"plain", append(hdr(0x80, 0), pay...), pay},
		{"marker", append(hdr(0x80, 0x80), pay...), pay},
		{"other type", append(hdr(0x80, 8), pay...), nil},
		{"version 1", append(hdr(0x40, 0), pay...), nil},
		{"one CSRC", append(append(hdr(0x81, 0), 9, 9, 9, 9), pay...), pay},
		{"extension", append(append(hdr(0x90, 0), 0xbe, 0xde, 0, 1, 7, 7, 7, 7), pay...), pay},
		{"padding", append(append(hdr(0xa0, 0), pay...), 0, 0, 3), pay},
		{"short", hdr(0x80, 0)[:11], nil},
		{"CSRCs past the end", append(hdr(0x8f, 0), pay...), nil},
		{"extension past the end", append(hdr(0x90, 0), 0xbe, 0xde, 0, 9), nil},
		{"padding past the header", append(hdr(0xa0, 0), 0, 40), nil},
	} {
		got, ok := rtpPayload(tc.p, 0)
		if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}

func FuzzRTPPayload(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xff})
	f.Add([]byte{0xb1, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 5, 6, 7, 8, 0xbe, 0xde, 0, 1, 1, 1, 1, 1, 2})
	f.Fuzz(func(t *testing.T, p []byte) {
		if pay, ok := rtpPayload(p, 0); ok && len(pay) > len(p)-12 {
			t.Errorf("payload of %d bytes from a %d-byte packet", len(pay), len(p))
		}
	})
}

// The capture reads back as sipp reads it: a pcap header for Ethernet,
// then one IPv4/UDP/RTP packet per 20 ms of μ-law, with valid IP
// checksums, consecutive RTP sequence numbers and timestamps, and capture
// times 20 ms apart.
func TestPCMUCapture(t *testing.T) {
	ulaw := make([]byte, 160*3+40)
	for i := range ulaw {
		ulaw[i] = byte(i)
	}
	b := PCMUCapture(ulaw)
	le, be := binary.LittleEndian, binary.BigEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b2c3d4 || le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("global header % x", b[:min(24, len(b))])
	}
	b = b[24:]
	var got []byte
	for i := 0; len(b) > 0; i++ {
		if len(b) < 16 {
			t.Fatalf("packet %d: %d bytes left", i, len(b))
		}
		at := time.Duration(le.Uint32(b))*time.Second + time.Duration(le.Uint32(b[4:]))*time.Microsecond
		if want := time.Duration(i) * 20 * time.Millisecond; at != want {
			t.Errorf("packet %d captured at %v, want %v", i, at, want)
		}
		n := int(le.Uint32(b[8:]))
		if int(le.Uint32(b[12:])) != n || len(b) < 16+n {
			t.Fatalf("packet %d: lengths %d, %d of %d", i, n, le.Uint32(b[12:]), len(b)-16)
		}
		eth := b[16 : 16+n]
		b = b[16+n:]
		if be.Uint16(eth[12:]) != 0x0800 {
			t.Fatalf("packet %d: ethertype %#x", i, be.Uint16(eth[12:]))
		}
		ip := eth[14:]
		if ip[0] != 0x45 || ip[9] != 17 || int(be.Uint16(ip[2:])) != len(ip) || ipChecksum(ip[:20]) != 0 {
			t.Fatalf("packet %d: IP header % x", i, ip[:20])
		}
		udp := ip[20:]
		if int(be.Uint16(udp[4:])) != len(udp) {
			t.Fatalf("packet %d: UDP length %d of %d", i, be.Uint16(udp[4:]), len(udp))
		}
		rtp := udp[8:]
		pay, ok := rtpPayload(rtp, 0)
		if !ok || be.Uint16(rtp[2:]) != uint16(i) || be.Uint32(rtp[4:]) != uint32(i*160) || (rtp[1]&0x80 != 0) != (i == 0) {
			t.Fatalf("packet %d: RTP header % x", i, rtp[:12])
		}
		got = append(got, pay...)
	}
	if !bytes.Equal(got, ulaw) {
		t.Errorf("the capture carries %d bytes that differ from the %d given", len(got), len(ulaw))
	}
}

func TestParseSippStat(t *testing.T) {
	// sipp's -trace_stat columns, cut down; one line per -fd period.
	stat := "StartTime;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n" +
		"2026-12-03\t13:41:49.462106\t1796305309.462106;25;0;0;0;0;\n" +
		"2026-12-03\t13:41:49.462106\t1796305309.462106;0;12;48;0;2;\n"
	ok, failed, err := parseSippStat(stat)
	if err != nil || ok != 48 || failed != 2 {
		t.Errorf("got %d, %d, %v; want 48 successful, 2 failed", ok, failed, err)
	}
	for _, bad := range []string{"", "StartTime;SuccessfulCall(C);\n", "StartTime;CurrentCall;\n1;2;\n", "SuccessfulCall(C);FailedCall(C);\nx;1;\n"} {
		if _, _, err := parseSippStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseSippRTT(t *testing.T) {
	got, err := parseSippRTT(strings.NewReader("Date_ms;response_time_ms;rtd_no\n52.001;0;1\n104.001;3;1\n156.5;12.5;1\n"))
	want := []time.Duration{0, 3 * time.Millisecond, 12500 * time.Microsecond}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	if _, err := parseSippRTT(strings.NewReader("Date_ms;response_time_ms;rtd_no\n52.001;soon;1\n")); err == nil {
		t.Error("a bad response time: no error")
	}
}
