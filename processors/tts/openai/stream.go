package openai

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/voiced-dev/voiced/audio"
)

// ErrMedia is wrapped by the errors of answers that are not the audio they
// claim to be.
var ErrMedia = errors.New("tts/openai: malformed audio")

// reader turns a streamed answer body into mono PCM16 as it arrives. Its
// rate is known after the first Read.
type reader struct {
	body   io.Reader
	format string
	rate   int

	started bool
	mp3     *audio.MP3Reader
	raw     []byte
	odd     []byte // a byte of a sample split between reads
	chans   int
}

// Read fills dst with up to len(dst) samples.
func (r *reader) Read(dst []int16) (int, error) {
	if !r.started {
		r.started = true
		if err := r.start(); err != nil {
			return 0, err
		}
	}
	if r.mp3 != nil {
		return r.mp3.Read(dst)
	}
	return r.readPCM(dst)
}

func (r *reader) start() error {
	switch r.format {
	case "mp3":
		m, err := audio.NewMP3Reader(r.body)
		if err != nil {
			if errors.Is(err, audio.ErrMP3) {
				return fmt.Errorf("%w: %v", ErrMedia, err)
			}
			return err
		}
		r.mp3, r.rate = m, m.Format().SampleRate
	case "wav":
		rate, chans, err := readWAVHeader(r.body)
		if err != nil {
			return err
		}
		r.rate, r.chans = rate, chans
	default: // pcm
		r.chans = 1
	}
	if r.chans == 0 {
		r.chans = 1
	}
	return nil
}

// readPCM reads little-endian 16-bit PCM, mixing channels down.
func (r *reader) readPCM(dst []int16) (int, error) {
	frameBytes := 2 * r.chans
	want := len(dst) * frameBytes
	if cap(r.raw) < want {
		r.raw = make([]byte, want)
	}
	buf := r.raw[:want]
	k := copy(buf, r.odd)
	n, err := r.body.Read(buf[k:])
	n += k
	whole := n - n%frameBytes
	r.odd = append(r.odd[:0], buf[whole:n]...)
	out := 0
	for i := 0; i < whole; i += frameBytes {
		sum := 0
		for c := 0; c < r.chans; c++ {
			sum += int(int16(binary.LittleEndian.Uint16(buf[i+2*c:])))
		}
		dst[out] = int16(sum / r.chans)
		out++
	}
	if err == io.EOF && len(r.odd) > 0 {
		err = fmt.Errorf("%w: stream ends inside a sample", ErrMedia)
	}
	return out, err
}

// readWAVHeader reads a RIFF/WAVE header up to the start of the data chunk
// (http://soundfile.sapp.org/doc/WaveFormat/). Sizes of 0xFFFFFFFF (a
// stream of unknown length) are accepted; only 16-bit PCM is.
func readWAVHeader(r io.Reader) (rate, channels int, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, headerErr(err)
	}
	if string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WAVE" {
		return 0, 0, fmt.Errorf("%w: not a WAV stream", ErrMedia)
	}
	for range 16 { // chunks before data
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0, 0, headerErr(err)
		}
		size := binary.LittleEndian.Uint32(ch[4:])
		switch string(ch[:4]) {
		case "fmt ":
			if size < 16 || size > 64 {
				return 0, 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMedia, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return 0, 0, headerErr(err)
			}
			tag, chans := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
			rate = int(binary.LittleEndian.Uint32(b[4:]))
			bits := binary.LittleEndian.Uint16(b[14:])
			if (tag != 1 && tag != 0xFFFE) || bits != 16 || chans < 1 || chans > 8 || !audio.SupportedRate(rate) {
				return 0, 0, fmt.Errorf("%w: WAV format %d, %d bits, %d channels, %d Hz", ErrMedia, tag, bits, chans, rate)
			}
			channels = chans
		case "data":
			if channels == 0 {
				return 0, 0, fmt.Errorf("%w: data before fmt", ErrMedia)
			}
			return rate, channels, nil
		default:
			if size > 1<<20 {
				return 0, 0, fmt.Errorf("%w: %q chunk of %d bytes", ErrMedia, ch[:4], size)
			}
			if _, err := io.CopyN(io.Discard, r, int64(size+size%2)); err != nil {
				return 0, 0, headerErr(err)
			}
		}
	}
	return 0, 0, fmt.Errorf("%w: no data chunk", ErrMedia)
}

func headerErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: WAV header cut short", ErrMedia)
	}
	return err
}
