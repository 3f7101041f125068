package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/voiced-dev/voiced/frame"
)

// chunk returns a RIFF chunk: id, little-endian size, body, pad byte if odd.
// A size of -1 uses len(body).
func chunk(id string, size int64, body []byte) []byte {
	if size < 0 {
		size = int64(len(body))
	}
	b := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(size))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// riff wraps chunks in a RIFF/WAVE header.
func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return chunk("RIFF", -1, body)
}

// fmtBody returns a 16-byte WAVEFORMAT body.
func fmtBody(code, channels, rate, bits int) []byte {
	b := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(code))
	le.PutUint16(b[2:], uint16(channels))
	le.PutUint32(b[4:], uint32(rate))
	le.PutUint32(b[8:], uint32(rate*channels*bits/8))
	le.PutUint16(b[12:], uint16(channels*bits/8))
	le.PutUint16(b[14:], uint16(bits))
	return b
}

// extBody returns a 40-byte WAVEFORMATEXTENSIBLE body with subformat code
// sub and the standard GUID tail.
func extBody(channels, rate, bits, valid, sub int) []byte {
	b := fmtBody(0xFFFE, channels, rate, bits)
	le := binary.LittleEndian
	b = le.AppendUint16(b, 22)
	b = le.AppendUint16(b, uint16(valid))
	b = le.AppendUint32(b, 0x3) // front left, front right
	b = le.AppendUint16(b, uint16(sub))
	return append(b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
}

var testSamples = []int16{0, 1, -1, 32767, -32768, 1000, -1000, 0x1234}

func pcmBytes(s []int16) []byte { return EncodePCM16(nil, s) }

func TestWriteWAVGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteWAV(&buf, frame.Format{SampleRate: 16000, Channels: 2}, []int16{1, -2, 0x0304, -32768}); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'R', 'I', 'F', 'F', 44, 0, 0, 0, 'W', 'A', 'V', 'E',
		'f', 'm', 't', ' ', 16, 0, 0, 0,
		1, 0, // PCM
		2, 0, // channels
		0x80, 0x3e, 0, 0, // 16000 Hz
		0x00, 0xfa, 0, 0, // 64000 bytes/s
		4, 0, // block align
		16, 0, // bits
		'd', 'a', 't', 'a', 8, 0, 0, 0,
		1, 0, 0xfe, 0xff, 0x04, 0x03, 0x00, 0x80,
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteWAV =\n% x\nwant\n% x", buf.Bytes(), want)
	}
}

func TestReadWAV(t *testing.T) {
	t.Parallel()
	data := pcmBytes(testSamples)
	mono16k := frame.Format{SampleRate: 16000, Channels: 1}
	stereo48k := frame.Format{SampleRate: 48000, Channels: 2}
	tests := []struct {
		name string
		file []byte
		f    frame.Format
		want []int16
	}{
		{"pcm", riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", -1, data)), mono16k, testSamples},
		{"stereo", riff(chunk("fmt ", -1, fmtBody(1, 2, 48000, 16)), chunk("data", -1, data)), stereo48k, testSamples},
		{"extensible", riff(chunk("fmt ", -1, extBody(2, 48000, 16, 16, 1)), chunk("data", -1, data)), stereo48k, testSamples},
		{"extensible 12 valid bits", riff(chunk("fmt ", -1, extBody(1, 16000, 16, 12, 1)), chunk("data", -1, data)), mono16k, testSamples},
		{"fmt with cbSize 0", riff(chunk("fmt ", -1, append(fmtBody(1, 1, 16000, 16), 0, 0)), chunk("data", -1, data)), mono16k, testSamples},
		{"LIST before fmt, odd chunk, fact", riff(
			chunk("LIST", -1, []byte("INFOISFT\x05\x00\x00\x00abcd\x00")),
			chunk("junk", -1, []byte{1, 2, 3}),
			chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)),
			chunk("fact", -1, []byte{8, 0, 0, 0}),
			chunk("data", -1, data),
			chunk("LIST", -1, []byte("trailing")),
		), mono16k, testSamples},
		{"streaming size 0", riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", 0, data)), mono16k, testSamples},
		{"streaming size ffffffff", riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", 0xFFFFFFFF, data)), mono16k, testSamples},
		{"streaming, partial frame at end", riff(chunk("fmt ", -1, fmtBody(1, 2, 48000, 16)), chunk("data", 0xFFFFFFFF, data[:len(data)-3])), stereo48k, testSamples[:6]},
		{"size with partial frame", riff(chunk("fmt ", -1, fmtBody(1, 2, 48000, 16)), chunk("data", 14, data)), stereo48k, testSamples[:6]},
		{"empty", riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", -1, nil)), mono16k, nil},
	}
	for _, tt := range tests {
		// Read through a one-byte reader too: chunk handling must not
		// depend on how reads are split.
		for _, r := range []io.Reader{bytes.NewReader(tt.file), iotest.OneByteReader(bytes.NewReader(tt.file))} {
			f, s, err := ReadWAV(r)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if f != tt.f || !slices.Equal(s, tt.want) {
				t.Errorf("%s: got %+v %v, want %+v %v", tt.name, f, s, tt.f, tt.want)
			}
		}
	}
}

func TestReadWAVErrors(t *testing.T) {
	t.Parallel()
	data := pcmBytes(testSamples)
	fmtOK := chunk("fmt ", -1, fmtBody(1, 1, 16000, 16))
	badAlign := fmtBody(1, 2, 16000, 16)
	badAlign[12] = 2
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"empty input", nil, ErrNotWAV},
		{"short", []byte("RIFF\x00\x00"), ErrNotWAV},
		{"RIFX", append([]byte("RIFX\x00\x00\x00\x00WAVE"), fmtOK...), ErrNotWAV},
		{"AVI", []byte("RIFF\x04\x00\x00\x00AVI "), ErrNotWAV},
		{"float", riff(chunk("fmt ", -1, fmtBody(3, 1, 16000, 32)), chunk("data", -1, data)), ErrUnsupported},
		{"mu-law", riff(chunk("fmt ", -1, fmtBody(7, 1, 8000, 8)), chunk("data", -1, data)), ErrUnsupported},
		{"24-bit", riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 24)), chunk("data", -1, data)), ErrUnsupported},
		{"extensible float", riff(chunk("fmt ", -1, extBody(1, 16000, 32, 32, 3)), chunk("data", -1, data)), ErrUnsupported},
		{"extensible short", riff(chunk("fmt ", -1, fmtBody(0xFFFE, 1, 16000, 16)), chunk("data", -1, data)), ErrNotWAV},
		{"fmt too small", riff(chunk("fmt ", -1, make([]byte, 14)), chunk("data", -1, data)), ErrNotWAV},
		{"fmt too large", riff(chunk("fmt ", 1<<30, fmtBody(1, 1, 16000, 16))), ErrTooLarge},
		{"zero channels", riff(chunk("fmt ", -1, fmtBody(1, 0, 16000, 16)), chunk("data", -1, data)), ErrNotWAV},
		{"too many channels", riff(chunk("fmt ", -1, fmtBody(1, 300, 16000, 16)), chunk("data", -1, data)), ErrTooLarge},
		{"zero rate", riff(chunk("fmt ", -1, fmtBody(1, 1, 0, 16)), chunk("data", -1, data)), ErrNotWAV},
		{"huge rate", riff(chunk("fmt ", -1, fmtBody(1, 1, 1<<30, 16)), chunk("data", -1, data)), ErrTooLarge},
		{"block align", riff(chunk("fmt ", -1, badAlign), chunk("data", -1, data)), ErrNotWAV},
		{"data before fmt", riff(chunk("data", -1, data), fmtOK), ErrNotWAV},
		{"no fmt", riff(chunk("LIST", -1, []byte("abcd"))), io.ErrUnexpectedEOF},
		{"no data", riff(fmtOK), io.ErrUnexpectedEOF},
		{"truncated chunk header", append(riff(fmtOK), 'd', 'a'), io.ErrUnexpectedEOF},
		{"truncated data", riff(fmtOK, chunk("data", 100, data)), io.ErrUnexpectedEOF},
		{"truncated skipped chunk", riff(fmtOK, chunk("LIST", 100, data)), io.ErrUnexpectedEOF},
		{"truncated fmt", riff(chunk("fmt ", 16, []byte{1, 0, 1})), io.ErrUnexpectedEOF},
		{"data over the limit", riff(fmtOK, chunk("data", MaxWAVDataBytes+2, data)), ErrTooLarge},
	}
	for _, tt := range tests {
		_, s, err := ReadWAV(bytes.NewReader(tt.file))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		if s != nil {
			t.Errorf("%s: samples returned with an error", tt.name)
		}
	}
}

// TestReadWAVHostileSize checks that a header claiming a large data chunk
// does not make ReadWAV allocate for it before the data is there.
func TestReadWAVHostileSize(t *testing.T) {
	file := riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", MaxWAVDataBytes, pcmBytes(testSamples)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := ReadWAV(bytes.NewReader(file))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("allocated %d bytes for a %d-byte file", n, len(file))
	}
}

// TestReadWAVStreamLimit checks that a streamed data chunk stops at the
// size limit (MaxWAVDataBytes for ReadWAV; a small one here).
func TestReadWAVStreamLimit(t *testing.T) {
	t.Parallel()
	hdr := riff(chunk("fmt ", -1, fmtBody(1, 1, 16000, 16)), chunk("data", 0xFFFFFFFF, nil))
	for _, tt := range []struct {
		n    int64
		want error
	}{{1000, nil}, {1001, ErrTooLarge}, {1 << 20, ErrTooLarge}} {
		r := io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeroReader{}, tt.n))
		_, s, err := readWAV(r, 1000)
		if !errors.Is(err, tt.want) || err == nil && len(s) != 500 {
			t.Errorf("%d bytes streamed: %d samples, error %v, want %v", tt.n, len(s), err, tt.want)
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestWriteWAVErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f frame.Format
		s []int16
	}{
		{frame.Format{SampleRate: 0, Channels: 1}, nil},
		{frame.Format{SampleRate: 16000, Channels: 0}, nil},
		{frame.Format{SampleRate: -1, Channels: 1}, nil},
		{frame.Format{SampleRate: 16000, Channels: MaxWAVChannels + 1}, nil},
		{frame.Format{SampleRate: 16000, Channels: 2}, []int16{1, 2, 3}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := WriteWAV(&buf, tt.f, tt.s); !errors.Is(err, ErrInvalidFormat) {
			t.Errorf("WriteWAV(%+v, %d samples) error %v, want ErrInvalidFormat", tt.f, len(tt.s), err)
		}
	}
	werr := errors.New("disk full")
	if err := WriteWAV(failWriter{werr}, frame.Mono16k, testSamples); !errors.Is(err, werr) {
		t.Errorf("write error %v, want %v", err, werr)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestLoadSaveWAV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.wav")
	// Longer than the write and read buffers.
	s := tone(16000, 440, 20000, 0, 100000)
	f := frame.Format{SampleRate: 24000, Channels: 2}
	if err := SaveWAV(path, f, s); err != nil {
		t.Fatal(err)
	}
	gotF, gotS, err := LoadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotF != f || !slices.Equal(gotS, s) {
		t.Errorf("LoadWAV got %+v and %d samples, want %+v and %d", gotF, len(gotS), f, len(s))
	}
	if _, _, err := LoadWAV(filepath.Join(dir, "missing.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadWAV of a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.wav")
	if err := SaveWAV(bad, frame.Format{}, s); !errors.Is(err, ErrInvalidFormat) {
		t.Errorf("SaveWAV with a bad format: %v", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SaveWAV left a partial file: %v", err)
	}
}

// FuzzReadWAV checks that ReadWAV never panics, that what it accepts is
// consistent (whole frames, no more samples than bytes), and that writing
// what it read and reading it back gives the same format and samples.
func FuzzReadWAV(f *testing.F) {
	data := pcmBytes(testSamples)
	fmtOK := chunk("fmt ", -1, fmtBody(1, 1, 16000, 16))
	var w bytes.Buffer
	_ = WriteWAV(&w, frame.Format{SampleRate: 44100, Channels: 2}, testSamples)
	f.Add(w.Bytes())
	f.Add(riff(fmtOK, chunk("data", -1, data)))
	f.Add(riff(chunk("fmt ", -1, extBody(2, 48000, 16, 16, 1)), chunk("data", -1, data)))
	f.Add(riff(chunk("LIST", -1, []byte("INFOabc")), fmtOK, chunk("data", 0xFFFFFFFF, data[:7])))
	f.Add(riff(fmtOK, chunk("data", 0, data)))
	f.Add(riff(chunk("fmt ", -1, fmtBody(3, 1, 16000, 32)), chunk("data", -1, data)))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		format, s, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			if s != nil {
				t.Fatalf("samples with error %v", err)
			}
			return
		}
		if format.Channels <= 0 || format.SampleRate <= 0 || len(s)%format.Channels != 0 {
			t.Fatalf("accepted format %+v with %d samples", format, len(s))
		}
		if 2*len(s) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(s), len(b))
		}
		var buf bytes.Buffer
		if err := WriteWAV(&buf, format, s); err != nil {
			t.Fatalf("WriteWAV of what ReadWAV accepted: %v", err)
		}
		f2, s2, err := ReadWAV(&buf)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if f2 != format || !slices.Equal(s, s2) {
			t.Fatalf("round trip changed %+v/%d samples into %+v/%d", format, len(s), f2, len(s2))
		}
	})
}
