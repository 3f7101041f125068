package rtpaudio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/frame"
)

// fakeDecoder decodes a payload "N" to 4 samples of value N, rejects the
// payload "bad", and records every call so tests check what it was sent.
type fakeDecoder struct {
	calls []string
}

func (d *fakeDecoder) Format() frame.Format { return frame.Format{SampleRate: 200, Channels: 1} } // 20 ms = 4 samples

func (d *fakeDecoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	d.calls = append(d.calls, "decode "+string(payload))
	n, err := strconv.Atoi(string(payload))
	if err != nil {
		return pcm, errors.New("corrupt")
	}
	return append(pcm, int16(n), int16(n), int16(n), int16(n)), nil
}

func (d *fakeDecoder) Conceal(pcm []int16) ([]int16, error) {
	d.calls = append(d.calls, "conceal")
	return append(pcm, -1, -1, -1, -1), nil
}

// fecDecoder also rebuilds a lost packet from the next one: payload "N"
// carries N-1.
type fecDecoder struct{ fakeDecoder }

func (d *fecDecoder) DecodeFEC(pcm []int16, next []byte) ([]int16, error) {
	d.calls = append(d.calls, "fec "+string(next))
	n, err := strconv.Atoi(string(next))
	if err != nil {
		return pcm, errors.New("corrupt")
	}
	return append(pcm, int16(n-1), int16(n-1), int16(n-1), int16(n-1)), nil
}

// show renders chunks by their first sample: "5 6 -1 0(silence)".
func show(chunks [][]int16) string {
	var s []string
	for _, c := range chunks {
		if len(c) != 4 {
			s = append(s, fmt.Sprintf("len%d", len(c)))
			continue
		}
		if c[0] == 0 {
			s = append(s, "silence")
			continue
		}
		s = append(s, fmt.Sprint(c[0]))
	}
	return strings.Join(s, " ")
}

func push(r *Receiver, seqs ...int) [][]int16 {
	var out [][]int16
	for _, s := range seqs {
		payload := []byte(strconv.Itoa(s))
		if s < 0 {
			payload = []byte("bad")
			s = -s
		}
		out = r.Push(uint16(s), payload, out)
	}
	return out
}

func TestReceiver(t *testing.T) {
	t.Run("reorders", func(t *testing.T) {
		d := &fakeDecoder{}
		r := NewReceiver(d, Config{})
		if got := show(push(r, 10, 12, 11, 13)); got != "10 11 12 13" {
			t.Errorf("got %q", got)
		}
		if got := strings.Join(d.calls, ","); got != "decode 10,decode 11,decode 12,decode 13" {
			t.Errorf("decoder calls %s", got)
		}
	})
	t.Run("conceals without FEC", func(t *testing.T) {
		d := &fakeDecoder{}
		r := NewReceiver(d, Config{Delay: 2})
		got := show(push(r, 10, 12, 13)) // 11 lost, released after 2 packets
		if got != "10 -1 12 13" {
			t.Errorf("got %q", got)
		}
		if s := r.Stats(); s.Lost != 1 || s.PLC != 1 || s.FEC != 0 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("rebuilds from FEC", func(t *testing.T) {
		d := &fecDecoder{}
		r := NewReceiver(d, Config{Delay: 2})
		got := show(push(r, 10, 12, 13))
		if got != "10 11 12 13" {
			t.Errorf("got %q", got)
		}
		if got := strings.Join(d.calls, ","); got != "decode 10,fec 12,decode 12,decode 13" {
			t.Errorf("decoder calls %s", got)
		}
		if s := r.Stats(); s.Lost != 1 || s.FEC != 1 || s.PLC != 0 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("corrupt payload is concealed", func(t *testing.T) {
		r := NewReceiver(&fakeDecoder{}, Config{})
		if got := show(push(r, 10, -11, 12)); got != "10 -1 12" {
			t.Errorf("got %q", got)
		}
		if s := r.Stats(); s.Corrupt != 1 || s.PLC != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("long gap turns to silence", func(t *testing.T) {
		d := &fakeDecoder{}
		r := NewReceiver(d, Config{Delay: 1, MaxConcealed: 2})
		got := show(push(r, 10, 15)) // 11..14 lost
		if got != "10 -1 -1 silence silence 15" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("flush releases a gap", func(t *testing.T) {
		r := NewReceiver(&fakeDecoder{}, Config{})
		out := push(r, 10, 12)
		if show(out) != "10" {
			t.Fatalf("before flush %q", show(out))
		}
		if got := show(r.Flush(nil)); got != "-1 12" {
			t.Errorf("flush gave %q", got)
		}
	})
}

// TestReceiverLatePacketOpus plays the sequence that LiveKit's old decoder
// dropped a late packet of, through real Opus: the late packet is put back
// in its place, and the one before it is rebuilt from its FEC.
func TestReceiverLatePacketOpus(t *testing.T) {
	enc, err := opus.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.SetInBandFEC(true, 20); err != nil {
		t.Fatal(err)
	}
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(dec, Config{})
	pcm := make([]int16, opus.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * (i % 48) / 48)
	}
	var out [][]int16
	for _, seq := range []uint16{65534, 65535, 2, 2, 1, 3, 100} { // wraps; 0 lost; 2 repeated; 1 late; 100 a new stream
		p, err := enc.Encode(pcm)
		if err != nil {
			t.Fatal(err)
		}
		out = r.Push(seq, append([]byte(nil), p...), out)
	}
	out = r.Flush(out)
	// 65534, 65535, FEC(0), 1, 2, 3, 100.
	if len(out) != 7 {
		t.Fatalf("got %d frames, want 7", len(out))
	}
	for i, c := range out {
		if len(c) != opus.FrameSamples {
			t.Errorf("frame %d: %d samples, want %d", i, len(c), opus.FrameSamples)
		}
	}
	if s := r.Stats(); s.Lost != 1 || s.Duplicates != 1 || s.Late != 0 || s.Resets != 1 || s.FEC+s.PLC != 1 {
		t.Errorf("stats %+v", s)
	}
}

// timeout is a read deadline that passed.
type timeout struct{}

func (timeout) Error() string   { return "timeout" }
func (timeout) Timeout() bool   { return true }
func (timeout) Temporary() bool { return true }

// TestRun reads a source that reorders, pauses (a timeout releases the
// gap) and ends: Run emits the audio in order and returns the source's
// error.
func TestRun(t *testing.T) {
	end := errors.New("track ended")
	steps := []any{10, 12, timeout{}, 13, end}
	var deadlines int
	src := SourceFunc(func(deadline time.Time) (*rtp.Packet, error) {
		if deadline.IsZero() {
			t.Error("read without a deadline")
		}
		deadlines++
		s := steps[0]
		steps = steps[1:]
		switch s := s.(type) {
		case int:
			return &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(s)}, Payload: []byte(strconv.Itoa(s))}, nil
		case error:
			return nil, s
		}
		return nil, fmt.Errorf("step %v", s)
	})
	var got [][]int16
	err := NewReceiver(&fakeDecoder{}, Config{}).Run(context.Background(), src, func(pcm []int16) error {
		got = append(got, pcm)
		return nil
	})
	if !errors.Is(err, end) {
		t.Errorf("Run returned %v, want %v", err, end)
	}
	if show(got) != "10 -1 12 13" || deadlines != 5 {
		t.Errorf("emitted %q after %d reads", show(got), deadlines)
	}

	// An emit error ends Run with it.
	stop := errors.New("pipeline stopped")
	src = SourceFunc(func(time.Time) (*rtp.Packet, error) {
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: 1}, Payload: []byte("1")}, nil
	})
	if err := NewReceiver(&fakeDecoder{}, Config{}).Run(context.Background(), src, func([]int16) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Run returned %v, want %v", err, stop)
	}
}

// FuzzReceiver pushes arbitrary sequence numbers: every chunk is a whole
// frame, and nothing is emitted twice for one sequence number in a row
// without a reset.
func FuzzReceiver(f *testing.F) {
	f.Add([]byte{0, 10, 0, 12, 0, 11, 0, 13})
	f.Add([]byte{255, 255, 0, 0, 0, 2, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReceiver(&fecDecoder{}, Config{})
		var out [][]int16
		pushed := 0
		for i := 0; i+1 < len(data); i += 2 {
			seq := uint16(data[i])<<8 | uint16(data[i+1])
			out = r.Push(seq, []byte(strconv.Itoa(int(seq)%1000+1)), out)
			pushed++
		}
		out = r.Flush(out)
		for _, c := range out {
			if len(c) != 4 {
				t.Fatalf("chunk of %d samples", len(c))
			}
		}
		s := r.Stats()
		if len(out) != pushed-s.Late-s.Duplicates+s.Lost {
			t.Fatalf("%d chunks from %d packets (stats %+v)", len(out), pushed, s)
		}
	})
}
