package transport_test

import (
	"errors"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

func TestPacerRealTime(t *testing.T) {
	p := transport.Pacer{Burst: time.Second, MaxAhead: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	// 20 ms every 20 ms for a minute, with 100 ms of jitter: never held.
	for i := range 3000 {
		now := t0.Add(time.Duration(i)*20*time.Millisecond + time.Duration(i%5)*20*time.Millisecond)
		if w, err := p.Add(now, 20*time.Millisecond); w != 0 || err != nil {
			t.Fatalf("frame %d: wait %v, %v", i, w, err)
		}
	}
}

func TestPacerHoldsThenRefuses(t *testing.T) {
	p := transport.Pacer{Burst: time.Second, MaxAhead: 3 * time.Second}
	now := time.Unix(1000, 0)
	var held time.Duration
	// A sender pushing a second of audio per 100 ms, the reader waiting as
	// told: held from the second second, refused once 3 s of waiting add up.
	for i := range 100 {
		w, err := p.Add(now, time.Second)
		if err != nil {
			var pe *transport.ProtocolError
			if !errors.As(err, &pe) || pe.Code != "too_fast" || !errors.Is(err, transport.ErrBadInput) {
				t.Fatalf("err = %v, want a too_fast ProtocolError", err)
			}
			if held < 2*time.Second || i > 6 {
				t.Fatalf("refused after %d seconds of audio and %v held", i+1, held)
			}
			return
		}
		if i == 0 && w != 0 {
			t.Fatalf("first second held %v, within the burst", w)
		}
		held += w
		now = now.Add(100*time.Millisecond + w)
	}
	t.Fatal("a sender 10× faster than real time was never refused")
}

func TestPacerZeroPacesNothing(t *testing.T) {
	var p transport.Pacer
	if w, err := p.Add(time.Unix(1, 0), time.Hour); w != 0 || err != nil {
		t.Fatalf("zero Pacer: %v, %v", w, err)
	}
}
