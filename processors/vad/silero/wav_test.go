package silero

import (
	"encoding/binary"
	"errors"
	"testing"
)

// wavPCM is the audio of a mono PCM16 WAV file.
type wavPCM struct {
	rate    int
	samples []int16
}

var errWAV = errors.New("wav: malformed")

// parseWAV reads a RIFF/WAVE file holding mono 16-bit PCM, the format flite
// writes. It is deliberately minimal: the test only needs flite's output.
func parseWAV(b []byte) (wavPCM, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return wavPCM{}, errWAV
	}
	var w wavPCM
	haveFmt := false
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		p += 8
		if size < 0 || size > len(b)-p {
			return wavPCM{}, errWAV
		}
		body := b[p : p+size]
		switch id {
		case "fmt ":
			if size < 16 {
				return wavPCM{}, errWAV
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || bits != 16 {
				return wavPCM{}, errWAV
			}
			w.rate = int(binary.LittleEndian.Uint32(body[4:8]))
			haveFmt = true
		case "data":
			if !haveFmt {
				return wavPCM{}, errWAV
			}
			w.samples = make([]int16, size/2)
			for i := range w.samples {
				w.samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return w, nil
		}
		p += size + size&1 // chunks are padded to even length
	}
	return wavPCM{}, errWAV
}

// makeWAV builds a mono PCM16 WAV file (used to test parseWAV).
func makeWAV(rate int, samples []int16) []byte {
	b := make([]byte, 0, 44+2*len(samples))
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(36+2*len(samples)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*2))
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(2*len(samples)))
	for _, s := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func TestParseWAV(t *testing.T) {
	samples := []int16{0, 1, -1, 32767, -32768, 1234}
	good := makeWAV(16000, samples)

	w, err := parseWAV(good)
	if err != nil {
		t.Fatalf("parseWAV: %v", err)
	}
	if w.rate != 16000 || len(w.samples) != len(samples) {
		t.Fatalf("got rate %d, %d samples; want 16000, %d", w.rate, len(w.samples), len(samples))
	}
	for i := range samples {
		if w.samples[i] != samples[i] {
			t.Fatalf("sample %d = %d, want %d", i, w.samples[i], samples[i])
		}
	}

	// An odd-sized chunk before "fmt " must be skipped with its pad byte.
	withList := append([]byte{}, good[:12]...)
	withList = append(withList, "LIST\x03\x00\x00\x00abc\x00"...)
	withList = append(withList, good[12:]...)
	if w, err := parseWAV(withList); err != nil || len(w.samples) != len(samples) {
		t.Fatalf("with LIST chunk: %v, %d samples", err, len(w.samples))
	}

	stereo := append([]byte{}, good...)
	stereo[22] = 2
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not riff":  append([]byte("RIFX"), good[4:]...),
		"truncated": good[:40],
		"stereo":    stereo,
		"no data":   good[:36],
	} {
		if _, err := parseWAV(b); !errors.Is(err, errWAV) {
			t.Errorf("%s: err = %v, want errWAV", name, err)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(makeWAV(16000, []int16{1, 2, 3}))
	f.Add(makeWAV(8000, nil))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWAV(b)
		if err != nil {
			return
		}
		if 2*len(w.samples) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(w.samples), len(b))
		}
	})
}
