package sip

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrBadDTMF wraps a telephone-event payload or an INFO body that is not
// DTMF.
var ErrBadDTMF = errors.New("sip: bad DTMF")

// dtmfKeys maps RFC 4733 event codes 0–15 to keys.
const dtmfKeys = "0123456789*#ABCD"

// toneEvent is an RFC 4733 §2.3 telephone-event payload.
type toneEvent struct {
	digit    byte
	end      bool
	volume   uint8
	duration uint16
}

// parseToneEvent decodes the 4-byte payload of a telephone-event packet.
// Events other than the keypad's (flash, modem tones) are ErrBadDTMF.
func parseToneEvent(b []byte) (toneEvent, error) {
	if len(b) < 4 {
		return toneEvent{}, ErrBadDTMF
	}
	if int(b[0]) >= len(dtmfKeys) {
		return toneEvent{}, ErrBadDTMF
	}
	return toneEvent{
		digit:    dtmfKeys[b[0]],
		end:      b[1]&0x80 != 0,
		volume:   b[1] & 0x3F,
		duration: uint16(b[2])<<8 | uint16(b[3]),
	}, nil
}

// toneDedup reports each key press of an RFC 4733 stream once. The packets
// of one event share an RTP timestamp (§2.5.1.1): the start is sent several
// times on lossy links (with the marker bit, which some senders omit) and
// the end three times (§2.5.1.4). A press is reported on the first packet
// of a new timestamp, start or end, so a lost start does not lose the key
// and a missing marker does not matter; every later packet with that
// timestamp is a repeat. Not safe for concurrent use.
type toneDedup struct {
	seen  bool
	ts    uint32
	digit byte
	ended bool
}

// add returns the key of a new press, or 0 for a repeat.
func (d *toneDedup) add(ts uint32, ev toneEvent) byte {
	if d.seen && ts == d.ts && ev.digit == d.digit {
		d.ended = d.ended || ev.end
		return 0
	}
	if d.seen && ts == d.ts && !d.ended {
		// A different key on the same timestamp without an end in
		// between is a sender bug; take the new key.
		d.digit, d.ended = ev.digit, ev.end
		return ev.digit
	}
	d.seen, d.ts, d.digit, d.ended = true, ts, ev.digit, ev.end
	return ev.digit
}

// parseDTMFInfo reads the key of a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5"). Event codes 10
// and 11 stand for * and #.
func parseDTMFInfo(contentType string, body []byte) (byte, error) {
	ct, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	var sig string
	switch strings.TrimSpace(ct) {
	case "application/dtmf-relay":
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				sig = strings.TrimSpace(v)
				break
			}
		}
	case "application/dtmf":
		sig = strings.TrimSpace(string(body))
	default:
		return 0, ErrBadDTMF
	}
	if len(sig) == 1 {
		d := sig[0]
		if d >= 'a' && d <= 'd' {
			d -= 'a' - 'A'
		}
		if strings.IndexByte(dtmfKeys, d) >= 0 {
			return d, nil
		}
	}
	if n, err := strconv.Atoi(sig); err == nil && n >= 10 && n < len(dtmfKeys) {
		return dtmfKeys[n], nil
	}
	return 0, ErrBadDTMF
}
