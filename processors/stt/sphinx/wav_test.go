package sphinx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// wavPCM is what parseWAV returns: interleaved PCM16 samples and their format.
type wavPCM struct {
	rate     int
	channels int
	samples  []int16
}

var errWAV = errors.New("wav: malformed")

// parseWAV reads a RIFF/WAVE file holding 16-bit integer PCM. Only the "fmt "
// and "data" chunks are interpreted; other chunks are skipped.
func parseWAV(b []byte) (wavPCM, error) {
	var out wavPCM
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return out, fmt.Errorf("%w: no RIFF/WAVE header", errWAV)
	}
	b = b[12:]
	haveFmt := false
	for len(b) >= 8 {
		id := string(b[0:4])
		size := binary.LittleEndian.Uint32(b[4:8])
		b = b[8:]
		n := int(size)
		if uint64(size) > uint64(len(b)) {
			if id != "data" {
				return out, fmt.Errorf("%w: chunk %q overruns file", errWAV, id)
			}
			// Streamed writers leave the data size unset; take what is there.
			n = len(b)
		}
		body := b[:n]
		switch id {
		case "fmt ":
			if n < 16 {
				return out, fmt.Errorf("%w: short fmt chunk", errWAV)
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			out.channels = int(binary.LittleEndian.Uint16(body[2:4]))
			out.rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || bits != 16 {
				return out, fmt.Errorf("%w: format %d with %d bits, want PCM16", errWAV, format, bits)
			}
			if out.channels < 1 || out.rate < 1 {
				return out, fmt.Errorf("%w: %d channels at %d Hz", errWAV, out.channels, out.rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return out, fmt.Errorf("%w: data before fmt", errWAV)
			}
			out.samples = make([]int16, n/2)
			if err := binary.Read(bytes.NewReader(body[:n/2*2]), binary.LittleEndian, out.samples); err != nil {
				return out, fmt.Errorf("%w: %v", errWAV, err)
			}
			return out, nil
		}
		if n%2 == 1 && n < len(b) { // chunks are padded to even sizes
			n++
		}
		b = b[n:]
	}
	return out, fmt.Errorf("%w: no data chunk", errWAV)
}

// makeWAV writes samples as a canonical 44-byte-header PCM16 WAV file.
func makeWAV(rate, channels int, samples []int16) []byte {
	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.WriteString("RIFF")
	binary.Write(&buf, le, uint32(36+2*len(samples)))
	buf.WriteString("WAVEfmt ")
	binary.Write(&buf, le, uint32(16))
	binary.Write(&buf, le, uint16(1))
	binary.Write(&buf, le, uint16(channels))
	binary.Write(&buf, le, uint32(rate))
	binary.Write(&buf, le, uint32(rate*channels*2))
	binary.Write(&buf, le, uint16(channels*2))
	binary.Write(&buf, le, uint16(16))
	buf.WriteString("data")
	binary.Write(&buf, le, uint32(2*len(samples)))
	binary.Write(&buf, le, samples)
	return buf.Bytes()
}

func TestParseWAV(t *testing.T) {
	samples := []int16{0, 1, -1, 32767, -32768, 1234}
	good := makeWAV(16000, 1, samples)

	// A LIST chunk of odd size (padded) before data must be skipped.
	withList := append([]byte{}, good[:36]...)
	withList = append(withList, "LIST"...)
	withList = binary.LittleEndian.AppendUint32(withList, 3)
	withList = append(withList, 'a', 'b', 'c', 0)
	withList = append(withList, good[36:]...)

	// A streamed file whose data size field was never filled in.
	streamed := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(streamed[40:44], 0xFFFFFFFF)

	float := append([]byte{}, good...)
	binary.LittleEndian.PutUint16(float[20:22], 3)

	tests := []struct {
		name    string
		in      []byte
		want    []int16
		wantErr bool
	}{
		{"canonical", good, samples, false},
		{"skips LIST chunk", withList, samples, false},
		{"unset data size", streamed, samples, false},
		{"float format", float, nil, true},
		{"not RIFF", append([]byte("RIFX"), good[4:]...), nil, true},
		{"truncated header", good[:20], nil, true},
		{"no data chunk", good[:36], nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWAV(tc.in)
			if tc.wantErr {
				if !errors.Is(err, errWAV) {
					t.Fatalf("err = %v, want errWAV", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.rate != 16000 || got.channels != 1 {
				t.Fatalf("format = %d Hz × %d, want 16000 × 1", got.rate, got.channels)
			}
			if fmt.Sprint(got.samples) != fmt.Sprint(tc.want) {
				t.Fatalf("samples = %v, want %v", got.samples, tc.want)
			}
		})
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(makeWAV(16000, 1, []int16{1, 2, 3}))
	f.Add(makeWAV(8000, 2, nil))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWAV(b)
		if err != nil {
			return
		}
		if w.rate < 1 || w.channels < 1 {
			t.Fatalf("accepted %d Hz × %d channels", w.rate, w.channels)
		}
		if 2*len(w.samples) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(w.samples), len(b))
		}
	})
}
