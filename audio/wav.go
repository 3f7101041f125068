package audio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/voiced-dev/voiced/frame"
)

// WAV limits. ReadWAV never allocates more than the data it has actually
// read (plus a bounded read buffer), whatever the header claims.
const (
	// MaxWAVDataBytes is the largest data chunk ReadWAV accepts: 256 MiB,
	// about 46 minutes of 48 kHz stereo.
	MaxWAVDataBytes = 256 << 20
	// MaxWAVChannels is the largest channel count ReadWAV and WriteWAV
	// accept.
	MaxWAVChannels = 32
	// MaxWAVSampleRate is the highest sample rate ReadWAV and WriteWAV
	// accept, in Hz.
	MaxWAVSampleRate = 768000
	// maxFmtChunk bounds the fmt chunk, which is read into memory.
	maxFmtChunk = 1024
	// preallocSamples bounds the capacity reserved from the header's size.
	preallocSamples = 1 << 20
)

const (
	wavFormatPCM        = 0x0001
	wavFormatExtensible = 0xFFFE
	// streamingSize marks a data chunk whose length the writer did not know.
	streamingSize = 0xFFFFFFFF
)

// ksdataformatSubtypePCM's GUID tail: the subformat GUID of
// WAVE_FORMAT_EXTENSIBLE is the format code (2 bytes) followed by these 14
// bytes.
var pcmGUIDTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// ReadWAV reads a RIFF/WAVE file of 16-bit PCM (WAVE_FORMAT_PCM, or
// WAVE_FORMAT_EXTENSIBLE with the PCM subformat) and returns its format and
// interleaved samples.
//
// Chunks other than fmt and data (LIST, fact, cue, ...) are skipped, with
// the RIFF pad byte after odd-sized chunks. A data chunk size of 0 or
// 0xFFFFFFFF, written by streaming writers that could not seek back, means
// the samples run to the end of the input. A trailing partial frame is
// dropped. Reading stops after the data chunk; r is not read further.
//
// Errors: ErrNotWAV when the input is not RIFF/WAVE, ErrUnsupported for
// other encodings, ErrTooLarge beyond MaxWAVDataBytes or the header limits,
// and io.ErrUnexpectedEOF (wrapped) for a truncated file. All are wrapped
// with details and an "audio: wav:" prefix.
//
// The spec: Microsoft's "Multimedia Programming Interface and Data
// Specifications 1.0" (RIFF/WAVE) and the WAVEFORMATEXTENSIBLE documentation.
func ReadWAV(r io.Reader) (frame.Format, []int16, error) {
	return readWAV(r, MaxWAVDataBytes)
}

// readWAV is ReadWAV with a data size limit of limit bytes.
func readWAV(r io.Reader, limit int64) (frame.Format, []int16, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame.Format{}, nil, fmt.Errorf("%w: short header: %w", ErrNotWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return frame.Format{}, nil, fmt.Errorf("%w: missing RIFF/WAVE signature", ErrNotWAV)
	}

	var (
		f      frame.Format
		haveFn bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if !haveFn {
					return frame.Format{}, nil, fmt.Errorf("audio: wav: no fmt chunk: %w", io.ErrUnexpectedEOF)
				}
				return frame.Format{}, nil, fmt.Errorf("audio: wav: no data chunk: %w", io.ErrUnexpectedEOF)
			}
			return frame.Format{}, nil, fmt.Errorf("audio: wav: chunk header: %w", unexpected(err))
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if haveFn {
				// A second fmt chunk is malformed; keep the first.
				if err := skip(r, size); err != nil {
					return frame.Format{}, nil, err
				}
				continue
			}
			var err error
			f, err = readFmt(r, size)
			if err != nil {
				return frame.Format{}, nil, err
			}
			haveFn = true
		case "data":
			if !haveFn {
				return frame.Format{}, nil, fmt.Errorf("%w: wav: data chunk before fmt chunk", ErrNotWAV)
			}
			s, err := readData(r, size, f.Channels, limit)
			if err != nil {
				return frame.Format{}, nil, err
			}
			return f, s, nil
		default:
			if err := skip(r, size); err != nil {
				return frame.Format{}, nil, err
			}
		}
	}
}

// readFmt parses a fmt chunk of the given size (and its pad byte).
func readFmt(r io.Reader, size uint32) (frame.Format, error) {
	if size < 16 {
		return frame.Format{}, fmt.Errorf("%w: wav: fmt chunk of %d bytes", ErrNotWAV, size)
	}
	if size > maxFmtChunk {
		return frame.Format{}, fmt.Errorf("%w: wav: fmt chunk of %d bytes", ErrTooLarge, size)
	}
	b := make([]byte, size+size&1)
	if _, err := io.ReadFull(r, b); err != nil {
		return frame.Format{}, fmt.Errorf("audio: wav: fmt chunk: %w", unexpected(err))
	}
	le := binary.LittleEndian
	code := le.Uint16(b[0:])
	channels := int(le.Uint16(b[2:]))
	rate := le.Uint32(b[4:])
	blockAlign := int(le.Uint16(b[12:]))
	bits := int(le.Uint16(b[14:]))

	if code == wavFormatExtensible {
		if size < 40 {
			return frame.Format{}, fmt.Errorf("%w: wav: extensible fmt chunk of %d bytes", ErrNotWAV, size)
		}
		valid := int(le.Uint16(b[18:]))
		sub := le.Uint16(b[24:])
		if sub != wavFormatPCM || !bytes.Equal(b[26:40], pcmGUIDTail[:]) {
			return frame.Format{}, fmt.Errorf("%w: wav: extensible subformat %x", ErrUnsupported, b[24:40])
		}
		if valid > bits {
			return frame.Format{}, fmt.Errorf("%w: wav: %d valid bits in a %d-bit container", ErrNotWAV, valid, bits)
		}
		code = sub
	}
	if code != wavFormatPCM {
		return frame.Format{}, fmt.Errorf("%w: wav: format code %#04x (only PCM)", ErrUnsupported, code)
	}
	if bits != 16 {
		return frame.Format{}, fmt.Errorf("%w: wav: %d-bit PCM (only 16-bit)", ErrUnsupported, bits)
	}
	if channels == 0 {
		return frame.Format{}, fmt.Errorf("%w: wav: zero channels", ErrNotWAV)
	}
	if channels > MaxWAVChannels {
		return frame.Format{}, fmt.Errorf("%w: wav: %d channels", ErrTooLarge, channels)
	}
	if rate == 0 {
		return frame.Format{}, fmt.Errorf("%w: wav: zero sample rate", ErrNotWAV)
	}
	if rate > MaxWAVSampleRate {
		return frame.Format{}, fmt.Errorf("%w: wav: sample rate %d Hz", ErrTooLarge, rate)
	}
	if blockAlign != 2*channels {
		return frame.Format{}, fmt.Errorf("%w: wav: block align %d for %d 16-bit channels", ErrNotWAV, blockAlign, channels)
	}
	return frame.Format{SampleRate: int(rate), Channels: channels}, nil
}

// readData reads a data chunk of size bytes (to EOF for a streaming size)
// and decodes whole frames of channels samples.
func readData(r io.Reader, size uint32, channels int, limit int64) ([]int16, error) {
	toEOF := size == 0 || size == streamingSize
	if !toEOF && int64(size) > limit {
		return nil, fmt.Errorf("%w: wav: data chunk of %d bytes (limit %d)", ErrTooLarge, size, limit)
	}
	want := int64(size)
	if toEOF {
		want = limit + 1 // read one byte more to detect the overflow
	} else {
		want -= want % int64(2*channels)
	}
	var s []int16
	if !toEOF {
		s = make([]int16, 0, min(want/2, preallocSamples))
	}
	var (
		buf  [16 << 10]byte
		n    int // bytes pending in buf
		read int64
	)
	for read < want {
		chunk := min(int64(len(buf)-n), want-read)
		m, err := io.ReadFull(r, buf[n:n+int(chunk)])
		read += int64(m)
		n += m
		whole := n - n%2
		for i := 0; i < whole; i += 2 {
			s = append(s, int16(binary.LittleEndian.Uint16(buf[i:])))
		}
		n = copy(buf[:], buf[whole:n])
		if err != nil {
			if !toEOF {
				return nil, fmt.Errorf("audio: wav: data chunk truncated at %d of %d bytes: %w", read, size, unexpected(err))
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("audio: wav: data: %w", err)
			}
			break
		}
	}
	if toEOF && read > limit {
		return nil, fmt.Errorf("%w: wav: streamed data exceeds %d bytes", ErrTooLarge, limit)
	}
	return s[:len(s)-len(s)%channels], nil
}

// skip discards a chunk body of size bytes and its pad byte.
func skip(r io.Reader, size uint32) error {
	n := int64(size) + int64(size&1)
	m, err := io.CopyN(io.Discard, r, n)
	if err != nil {
		if errors.Is(err, io.EOF) && size&1 == 1 && m == n-1 {
			// A missing pad byte at the end of the file: the chunk is whole,
			// and the next header read reports the end.
			return nil
		}
		return fmt.Errorf("audio: wav: skipping chunk: %w", unexpected(err))
	}
	return nil
}

// unexpected turns io.EOF inside a structure into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteWAV writes samples (interleaved, f.Channels per frame) to w as a
// canonical 44-byte-header WAVE_FORMAT_PCM file. It returns an error
// wrapping ErrInvalidFormat when f is not valid, when len(samples) is not a
// multiple of f.Channels, or when the data would not fit a WAV file, and
// otherwise the first write error. It does not retain samples.
func WriteWAV(w io.Writer, f frame.Format, samples []int16) error {
	if f.SampleRate <= 0 || f.SampleRate > MaxWAVSampleRate || f.Channels <= 0 || f.Channels > MaxWAVChannels {
		return fmt.Errorf("%w: wav: %d Hz, %d channels", ErrInvalidFormat, f.SampleRate, f.Channels)
	}
	if len(samples)%f.Channels != 0 {
		return fmt.Errorf("%w: wav: %d samples is not a whole number of %d-channel frames", ErrInvalidFormat, len(samples), f.Channels)
	}
	dataBytes := int64(len(samples)) * 2
	if dataBytes > 0xFFFFFFFF-36 {
		return fmt.Errorf("%w: wav: %d data bytes", ErrTooLarge, dataBytes)
	}
	var h [44]byte
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], uint32(36+dataBytes))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], wavFormatPCM)
	le.PutUint16(h[22:], uint16(f.Channels))
	le.PutUint32(h[24:], uint32(f.SampleRate))
	le.PutUint32(h[28:], uint32(f.SampleRate*f.Channels*2))
	le.PutUint16(h[32:], uint16(f.Channels*2))
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(dataBytes))
	if _, err := w.Write(h[:]); err != nil {
		return fmt.Errorf("audio: wav: %w", err)
	}
	var buf [8 << 10]byte
	for len(samples) > 0 {
		n := min(len(samples), len(buf)/2)
		b := EncodePCM16(buf[:0], samples[:n])
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("audio: wav: %w", err)
		}
		samples = samples[n:]
	}
	return nil
}

// LoadWAV reads the WAV file at path with ReadWAV.
func LoadWAV(path string) (frame.Format, []int16, error) {
	fl, err := os.Open(path)
	if err != nil {
		return frame.Format{}, nil, fmt.Errorf("audio: wav: %w", err)
	}
	defer fl.Close()
	f, s, err := ReadWAV(bufio.NewReaderSize(fl, 64<<10))
	if err != nil {
		return frame.Format{}, nil, fmt.Errorf("%w (%s)", err, path)
	}
	return f, s, nil
}

// SaveWAV writes samples to a WAV file at path with WriteWAV, creating or
// truncating it. On error the partial file is removed.
func SaveWAV(path string, f frame.Format, samples []int16) (err error) {
	fl, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("audio: wav: %w", err)
	}
	defer func() {
		if err != nil {
			fl.Close()
			os.Remove(path)
		}
	}()
	bw := bufio.NewWriterSize(fl, 64<<10)
	if err := WriteWAV(bw, f, samples); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audio: wav: %w", err)
	}
	if err := fl.Close(); err != nil {
		return fmt.Errorf("audio: wav: %w", err)
	}
	return nil
}
