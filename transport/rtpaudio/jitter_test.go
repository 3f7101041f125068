package rtpaudio

import (
	"fmt"
	"testing"
)

// describe renders units as "5 6 [7 lost, next 8] 8".
func describe(us []Unit) string {
	s := ""
	for i, u := range us {
		if i > 0 {
			s += " "
		}
		switch {
		case u.Payload != nil:
			s += fmt.Sprint(u.Seq)
			if string(u.Payload) != fmt.Sprint(u.Seq) {
				s += "(payload " + string(u.Payload) + ")"
			}
		case u.Next != nil:
			s += fmt.Sprintf("[%d lost, next %s]", u.Seq, u.Next)
		default:
			s += fmt.Sprintf("[%d lost]", u.Seq)
		}
	}
	return s
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay int
		in    []uint16 // pushed in this order; "flush" is 0xffff… not used
		flush bool     // Flush after the last push
		want  string
		// stats
		lost, late, dups, resets int
	}{
		{name: "in order", in: []uint16{10, 11, 12}, want: "10 11 12"},
		{name: "reordered pair", in: []uint16{10, 12, 11, 13}, want: "10 11 12 13"},
		{name: "reordered wide", delay: 3, in: []uint16{1, 4, 3, 2, 5}, want: "1 2 3 4 5"},
		{name: "loss waits for delay", delay: 3, in: []uint16{1, 3, 4}, want: "1"},
		{name: "loss concealed after delay", delay: 3, in: []uint16{1, 3, 4, 5}, want: "1 [2 lost, next 3] 3 4 5", lost: 1},
		{name: "two lost", delay: 2, in: []uint16{1, 4, 5}, want: "1 [2 lost] [3 lost, next 4] 4 5", lost: 2},
		{name: "loss then flush", delay: 3, in: []uint16{1, 3}, flush: true, want: "1 [2 lost, next 3] 3", lost: 1},
		{name: "duplicate", in: []uint16{1, 2, 2, 3}, want: "1 2 3", late: 1},
		{name: "duplicate held", delay: 3, in: []uint16{1, 3, 3, 2}, want: "1 2 3", dups: 1},
		{name: "late after concealment", delay: 2, in: []uint16{1, 3, 4, 2, 5}, want: "1 [2 lost, next 3] 3 4 5", lost: 1, late: 1},
		{name: "wraps", in: []uint16{65534, 65535, 0, 1}, want: "65534 65535 0 1"},
		{name: "wraps reordered", in: []uint16{65535, 1, 0, 2}, want: "65535 0 1 2"},
		{name: "jump is a new stream", delay: 3, in: []uint16{1, 2, 1000, 1001}, want: "1 2 1000 1001", resets: 1},
		{name: "jump back is a new stream", in: []uint16{5000, 5001, 100, 101}, want: "5000 5001 100 101", resets: 1},
		{name: "jump releases what is held", delay: 3, in: []uint16{1, 3, 900}, want: "1 [2 lost, next 3] 3 900", lost: 1, resets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJitter(tc.delay, 0)
			var got []Unit
			for _, s := range tc.in {
				got = j.Push(s, []byte(fmt.Sprint(s)), got)
			}
			if tc.flush {
				got = j.Flush(got)
			}
			if d := describe(got); d != tc.want {
				t.Errorf("got  %s\nwant %s", d, tc.want)
			}
			if j.Lost != tc.lost || j.Late != tc.late || j.Duplicates != tc.dups || j.Resets != tc.resets {
				t.Errorf("lost %d late %d dups %d resets %d; want %d %d %d %d",
					j.Lost, j.Late, j.Duplicates, j.Resets, tc.lost, tc.late, tc.dups, tc.resets)
			}
		})
	}
}

// FuzzJitter pushes arbitrary sequence numbers and checks the invariants:
// units come out in consecutive order (except across a reset), a payload
// only under its own number, FEC data only from the next packet, the buffer
// stays bounded, and a flush empties it.
func FuzzJitter(f *testing.F) {
	f.Add(uint8(3), []byte{0, 1, 0, 3, 0, 2})
	f.Add(uint8(1), []byte{0xff, 0xff, 0, 0, 0, 5, 0x80, 0})
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, delay uint8, data []byte) {
		j := NewJitter(int(delay%8), 16)
		var units []Unit
		var prev *uint16
		resets := 0
		check := func(us []Unit) {
			jumped := j.Resets != resets
			resets = j.Resets
			for _, u := range us {
				if prev != nil && u.Seq != *prev+1 && !jumped {
					t.Fatalf("unit %d after %d", u.Seq, *prev)
				}
				s := u.Seq
				prev = &s
				if u.Payload != nil {
					if string(u.Payload) != fmt.Sprint(u.Seq) {
						t.Fatalf("unit %d carries payload %s", u.Seq, u.Payload)
					}
				}
				if u.Next != nil && string(u.Next) != fmt.Sprint(u.Seq+1) {
					t.Fatalf("lost unit %d has next %s", u.Seq, u.Next)
				}
			}
		}
		for i := 0; i+1 < len(data); i += 2 {
			s := uint16(data[i])<<8 | uint16(data[i+1])
			units = j.Push(s, []byte(fmt.Sprint(s)), units[:0])
			check(units)
			if j.Len() > 16 {
				t.Fatalf("holds %d packets, bound 16", j.Len())
			}
		}
		units = j.Flush(units[:0])
		check(units)
		if j.Len() != 0 {
			t.Fatalf("%d packets held after Flush", j.Len())
		}
	})
}

func BenchmarkJitterReordered(b *testing.B) {
	j := NewJitter(3, 0)
	payload := []byte{1}
	var units []Unit
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		// Pairs swapped: 1 0 3 2 …
		units = j.Push(seq+1, payload, units[:0])
		units = j.Push(seq, payload, units[:0])
		seq += 2
	}
}
