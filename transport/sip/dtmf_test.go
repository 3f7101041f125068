package sip

import (
	"errors"
	"testing"
)

func TestParseToneEvent(t *testing.T) {
	ev, err := parseToneEvent([]byte{0x0b, 0x8a, 0x03, 0x20})
	if err != nil || ev.digit != '#' || !ev.end || ev.volume != 10 || ev.duration != 800 {
		t.Fatalf("got %+v, %v", ev, err)
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, {16, 0, 0, 0}, {200, 0x80, 0, 0}} {
		if _, err := parseToneEvent(b); !errors.Is(err, ErrBadDTMF) {
			t.Errorf("%x: err %v, want ErrBadDTMF", b, err)
		}
	}
}

// One key press is sent as a burst of packets with one timestamp: the
// start (marker, maybe repeated or lost), updates, and three ends.
func TestToneDedup(t *testing.T) {
	type pkt struct {
		ts  uint32
		key byte
		end bool
	}
	press := func(ts uint32, key byte, starts, updates int) []pkt {
		var ps []pkt
		for range starts {
			ps = append(ps, pkt{ts, key, false})
		}
		for range updates {
			ps = append(ps, pkt{ts, key, false})
		}
		return append(ps, pkt{ts, key, true}, pkt{ts, key, true}, pkt{ts, key, true})
	}
	var seq []pkt
	seq = append(seq, press(1000, '1', 1, 5)...)
	seq = append(seq, press(2000, '1', 3, 2)...) // the same key again, start repeated
	seq = append(seq, press(3000, '2', 0, 0)...) // start and updates lost: ends only
	seq = append(seq, press(4000, '#', 1, 0)...)
	seq = append(seq, pkt{3000, '2', true}) // a very late end of an old press
	var d toneDedup
	var got []byte
	for _, p := range seq {
		if k := d.add(p.ts, toneEvent{digit: p.key, end: p.end}); k != 0 {
			got = append(got, k)
		}
	}
	// The late end of 3000 arrives after 4000 started: it is a new
	// timestamp to the de-duplicator, which only remembers the last press;
	// the receiver's sequence check drops such packets before they get here.
	if string(got) != "112#2" {
		t.Errorf("keys %q, want %q", got, "112#2")
	}
}

func TestParseDTMFInfo(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		want     byte
		err      bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', false},
		{"Application/DTMF-Relay; charset=utf-8", "Signal= #\nDuration=100", '#', false},
		{"application/dtmf-relay", "Signal=11\r\n", '#', false},
		{"application/dtmf-relay", "Signal=10\r\n", '*', false},
		{"application/dtmf-relay", "Signal=d\r\n", 'D', false},
		{"application/dtmf", "7", '7', false},
		{"application/dtmf-relay", "Duration=160\r\n", 0, true},
		{"application/dtmf-relay", "Signal=16\r\n", 0, true},
		{"application/dtmf-relay", "Signal=55\r\n", 0, true},
		{"text/plain", "5", 0, true},
	} {
		got, err := parseDTMFInfo(tc.ct, []byte(tc.body))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s %q: got %q, %v", tc.ct, tc.body, got, err)
		}
	}
}

func FuzzDTMF(f *testing.F) {
	f.Add([]byte{0x01, 0x8a, 0x03, 0x20}, "application/dtmf-relay", []byte("Signal=1\r\n"))
	f.Add([]byte{0xff}, "application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, payload []byte, ct string, body []byte) {
		if ev, err := parseToneEvent(payload); err == nil && !dtmfKey(ev.digit) {
			t.Fatalf("tone event %x gave key %q", payload, ev.digit)
		}
		if d, err := parseDTMFInfo(ct, body); err == nil && !dtmfKey(d) {
			t.Fatalf("INFO %q %q gave key %q", ct, body, d)
		}
	})
}

func dtmfKey(d byte) bool {
	for i := range len(dtmfKeys) {
		if dtmfKeys[i] == d {
			return true
		}
	}
	return false
}
