package aec

import (
	"fmt"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
)

// Reference holds the audio recently played to the user on a wall-clock
// timeline, at the pipeline's rate: the echo canceller's far-end signal.
// The output stage writes it (it implements transport.AudioTap) as it sends
// audio, stamped with when the client is due to play it; the echo stage reads
// the stretch that was playing while the user's audio was captured. Times
// with nothing played read as silence. Safe for concurrent use by one
// writer and any readers. One Reference serves one session.
type Reference struct {
	from frame.Format
	rate int
	rs   *audio.Resampler

	mu   sync.Mutex
	t0   time.Time
	ring []int16
	hi   int64 // timeline index one past the last sample written
	last int64 // index one past the last non-silent sample written
	mono []int16
	conv []int16
}

// NewReference returns a Reference taking played audio in format from and
// holding span of it at rate (mono).
func NewReference(from frame.Format, rate int, span time.Duration) (*Reference, error) {
	if from.SampleRate <= 0 || from.Channels < 1 || rate <= 0 || span <= 0 {
		return nil, fmt.Errorf("echo: reference %+v → %d Hz over %v: %w", from, rate, span, ErrConfig)
	}
	r := &Reference{from: from, rate: rate, ring: make([]int16, int(span.Seconds()*float64(rate)))}
	if from.SampleRate != rate {
		rs, err := audio.NewResampler(from.SampleRate, rate)
		if err != nil {
			return nil, fmt.Errorf("echo: reference: %w", err)
		}
		r.rs = rs
	}
	return r, nil
}

func (r *Reference) index(t time.Time) int64 {
	return int64(t.Sub(r.t0)) * int64(r.rate) / int64(time.Second)
}

// Played implements transport.AudioTap: pcm (in the format given to
// NewReference) is due to play from at. It does not retain pcm.
func (r *Reference) Played(pcm []int16, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.t0.IsZero() {
		r.t0 = at.Add(-time.Second) // reads may look back before the first write
	}
	if r.from.Channels > 1 {
		r.mono = audio.Downmix(r.mono[:0], pcm, r.from.Channels)
		pcm = r.mono
	}
	if r.rs != nil {
		r.conv = r.rs.Process(r.conv[:0], pcm)
		pcm = r.conv
	}
	i := r.index(at)
	n := int64(len(r.ring))
	if i > r.hi {
		// Silence since the last write.
		for k := max(r.hi, i-n); k < i; k++ {
			r.ring[k%n] = 0
		}
	}
	for k, v := range pcm {
		if j := i + int64(k); j >= 0 {
			r.ring[j%n] = v
			if v != 0 {
				r.last = max(r.last, j+1)
			}
		}
	}
	r.hi = max(r.hi, i+int64(len(pcm)))
}

// Read fills dst with the reference that played in the len(dst) samples
// before end, and reports whether any of it was not silence.
func (r *Reference) Read(dst []int16, end time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(dst)
	if r.t0.IsZero() {
		return false
	}
	e := r.index(end)
	s := e - int64(len(dst))
	if r.last <= s {
		return false
	}
	n := int64(len(r.ring))
	for k := range dst {
		j := s + int64(k)
		if j >= 0 && j < r.hi && j >= r.hi-n {
			dst[k] = r.ring[j%n]
		}
	}
	return true
}
