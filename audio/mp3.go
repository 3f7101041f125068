package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"

	"github.com/voiced-dev/voiced/frame"
)

// ErrMP3 is wrapped by the errors of MP3Reader for data that is not MP3.
var ErrMP3 = errors.New("audio: bad mp3 stream")

// MP3Reader decodes an MP3 stream (MPEG-1/2 layer III, as made by lame and
// served by speech APIs) into mono PCM16 as its bytes arrive: it reads from
// its source only as far as the frames it decodes, so the first samples are
// ready long before a slow stream has been downloaded. Stereo streams are
// mixed down to mono.
//
// A stream that ends inside a frame because its source failed (a dropped
// connection) ends with that error, not io.EOF; one whose source ends
// cleanly ends with io.EOF. An MP3Reader is not safe for concurrent use.
type MP3Reader struct {
	src    *errReader
	dec    *mp3.Decoder
	format frame.Format
	buf    []byte
	err    error
}

// NewMP3Reader reads r up to the end of its first MP3 frame and returns a
// reader of its samples. Leading ID3v2 tags are skipped.
func NewMP3Reader(r io.Reader) (m *MP3Reader, err error) {
	src := &errReader{r: r}
	body, err := skipID3(src)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil { // the decoder panics on some bad data
			m, err = nil, fmt.Errorf("%w: %v", ErrMP3, p)
		}
	}()
	dec, err := mp3.NewDecoder(body)
	if err != nil {
		if src.err != nil {
			return nil, src.err
		}
		return nil, fmt.Errorf("%w: %v", ErrMP3, err)
	}
	return &MP3Reader{src: src, dec: dec, format: frame.Format{SampleRate: dec.SampleRate(), Channels: 1}}, nil
}

// Format is the format of the samples Read returns (mono, at the stream's
// sample rate).
func (m *MP3Reader) Format() frame.Format { return m.format }

// Read decodes up to len(dst) samples into dst, blocking for no more of the
// source than one frame needs. It returns io.EOF at the end of the stream,
// and the source's error when it failed.
func (m *MP3Reader) Read(dst []int16) (n int, err error) {
	if m.err != nil {
		return 0, m.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("%w: %v", ErrMP3, p)
			m.err = err
		}
	}()
	if need := 4 * len(dst); cap(m.buf) < need {
		m.buf = make([]byte, need)
	}
	buf := m.buf[:4*len(dst)]
	// The decoder gives 16-bit little-endian stereo; read whole frames of
	// it (4 bytes) so no sample is split between calls.
	k, err := io.ReadAtLeast(m.dec, buf, 4)
	k -= k % 4
	for i := 0; i < k; i += 4 {
		l := int16(uint16(buf[i]) | uint16(buf[i+1])<<8)
		r := int16(uint16(buf[i+2]) | uint16(buf[i+3])<<8)
		dst[n] = int16((int32(l) + int32(r)) / 2)
		n++
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // a final partial frame of bytes: the stream ended
		}
		if m.src.err != nil {
			err = m.src.err // the decoder hides a source that failed as EOF
		} else if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %v", ErrMP3, err)
		}
		m.err = err
		if n > 0 {
			return n, nil
		}
		return 0, err
	}
	return n, nil
}

// maxID3 bounds the ID3v2 tag skipped before the audio.
const maxID3 = 16 << 20

// skipID3 skips a leading ID3v2 tag (https://id3.org/id3v2.4.0-structure)
// without buffering it: go-mp3 allocates whatever size a tag claims, which
// lets a few bad bytes ask for half a gigabyte.
func skipID3(r *errReader) (io.Reader, error) {
	var head [10]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	if n < len(head) || string(head[:3]) != "ID3" {
		return io.MultiReader(bytes.NewReader(head[:n]), r), nil
	}
	size := 0
	for _, b := range head[6:10] {
		if b >= 0x80 {
			return nil, fmt.Errorf("%w: ID3 tag size not sync-safe", ErrMP3)
		}
		size = size<<7 | int(b)
	}
	if head[5]&0x10 != 0 {
		size += 10 // footer
	}
	if size > maxID3 {
		return nil, fmt.Errorf("%w: ID3 tag of %d bytes", ErrMP3, size)
	}
	if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
		if r.err != nil {
			return nil, r.err
		}
		return nil, fmt.Errorf("%w: ID3 tag: %v", ErrMP3, err)
	}
	return r, nil
}

// errReader remembers the first error of r that is not io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
