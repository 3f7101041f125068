package rtpaudio

// Jitter puts RTP payloads back in sequence-number order (RFC 3550 §5.1)
// and says which packets were lost, so that the decoder can conceal them.
//
// The playout delay is counted in packets, not in wall time: a gap in the
// sequence is waited on until Delay packets after it have arrived (at 20 ms
// per packet, Delay×20 ms of the sender's audio), then the missing packets
// are reported lost. In-order packets are released at once, so a stream
// without loss or reordering gets no added delay. Flush releases a gap at
// once (the reader calls it when no packet has come for a while).
//
// Packets older than the next one to release (late) and packets already
// held (duplicates) are dropped. A jump of more than MaxGap packets is taken
// as a new stream: what is held is released and the sequence restarts at
// the new packet, without concealing the jump.
//
// A Jitter is not safe for concurrent use; its Receiver owns it.
type Jitter struct {
	delay  int
	maxGap int

	started bool
	next    uint16 // sequence number of the next packet to release
	held    map[uint16][]byte

	// Stats.
	Late, Duplicates, Lost, Resets int
}

// Unit is one 20 ms-or-so slot of the stream, in order: a packet's payload,
// or a lost packet (Payload nil) with the payload of the packet after it
// when that one is held (Next: its in-band FEC may rebuild the lost one).
type Unit struct {
	Seq     uint16
	Payload []byte
	Next    []byte
}

// Default jitter settings.
const (
	DefaultJitterDelay = 3  // packets (60 ms at 20 ms per packet)
	DefaultMaxGap      = 50 // packets (1 s at 20 ms per packet)
)

// NewJitter returns a buffer that waits delay packets on a gap (default
// DefaultJitterDelay when ≤ 0) and treats jumps of maxGap packets or more
// as a new stream (default DefaultMaxGap when ≤ 0). It holds at most maxGap
// packets.
func NewJitter(delay, maxGap int) *Jitter {
	if delay <= 0 {
		delay = DefaultJitterDelay
	}
	if maxGap <= 0 {
		maxGap = DefaultMaxGap
	}
	if maxGap < delay {
		maxGap = delay
	}
	return &Jitter{delay: delay, maxGap: maxGap, held: map[uint16][]byte{}}
}

// Len returns the number of packets held.
func (j *Jitter) Len() int { return len(j.held) }

// Push adds a packet and appends to units every unit that is ready, in
// order; it returns units. The buffer keeps payload (the caller must not
// modify it afterwards).
func (j *Jitter) Push(seq uint16, payload []byte, units []Unit) []Unit {
	if !j.started {
		j.started, j.next = true, seq
	}
	d := int(int16(seq - j.next)) // distance from next, wrap-aware
	switch {
	case d < 0 && d > -j.maxGap:
		j.Late++
		return units
	case d < 0 || d >= j.maxGap:
		// Far from where we are: a new stream (or a sender restart).
		j.Resets++
		units = j.drain(units)
		j.next, d = seq, 0
	}
	if _, dup := j.held[seq]; dup {
		j.Duplicates++
		return units
	}
	j.held[seq] = payload
	return j.release(units, false)
}

// Flush reports the current gap lost and releases everything held.
func (j *Jitter) Flush(units []Unit) []Unit { return j.drain(units) }

func (j *Jitter) drain(units []Unit) []Unit {
	for len(j.held) > 0 {
		units = j.release(units, true)
	}
	return units
}

// release appends units while the next packet is held, or while force is
// set or the gap has waited long enough.
func (j *Jitter) release(units []Unit, force bool) []Unit {
	for len(j.held) > 0 {
		if p, ok := j.held[j.next]; ok {
			delete(j.held, j.next)
			units = append(units, Unit{Seq: j.next, Payload: p})
		} else {
			// A gap: every held packet comes after it.
			if !force && len(j.held) < j.delay {
				return units
			}
			j.Lost++
			units = append(units, Unit{Seq: j.next, Next: j.held[j.next+1]})
		}
		j.next++
	}
	return units
}
