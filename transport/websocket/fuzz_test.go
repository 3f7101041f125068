package websocket

import (
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// protocolCodes are the error codes and close codes of docs/protocol.md that
// a client message can cause.
var protocolCodes = map[string]int{
	"invalid_utf8": 1007,
	"invalid_json": 1007,
	"unknown_type": 1008,
	"bad_start":    1008,
	"odd_audio":    1007,
	"too_large":    1009,
}

// checkProtocolError checks that err is a documented client error.
func checkProtocolError(t *testing.T, err error) string {
	t.Helper()
	if !errors.Is(err, transport.ErrBadInput) {
		t.Fatalf("error %v does not wrap transport.ErrBadInput", err)
	}
	code, closeCode := errorCode(err)
	if want, ok := protocolCodes[code]; !ok || want != closeCode {
		t.Fatalf("error %v gives code %q close %d, not in the protocol's table", err, code, closeCode)
	}
	return code
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		`{"type":"start","sample_rate":16000}`,
		`{"type":"start","sample_rate":48000,"output_sample_rate":24000}`,
		`{"type":"text","text":"hello"}`,
		`{"type":"end"}`,
		`{"type":"dance"}`,
		`{}`,
		` {"type":"end"} `,
		`[]`,
		`null`,
		`"start"`,
		`{"type":"text","text":5}`,
		`{"type":"text"`,
		"{\"type\":\"text\",\"text\":\"\xff\"}",
		`{"TYPE":"end"}`,
		`{"type":"end","type":"dance"}`,
		`{"type":"text","text":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseText(data)
		if err != nil {
			code := checkProtocolError(t, err)
			if !utf8.Valid(data) && code != "invalid_utf8" {
				t.Fatalf("invalid UTF-8 %q gave %q", data, code)
			}
			return
		}
		switch m.Type {
		case "start", "text", "end":
		default:
			t.Fatalf("accepted %q with type %q", data, m.Type)
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8 %q", data)
		}
	})
}

func FuzzDecodeAudio(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{1})
	f.Add(uint8(1), []byte{0x34, 0x12, 0xff, 0xff})
	f.Add(uint8(2), make([]byte, 2*8000))
	f.Add(uint8(2), make([]byte, 2*8000+2))
	rates := []int{8000, 16000, 22050, 24000, 44100, 48000}
	f.Fuzz(func(t *testing.T, r uint8, data []byte) {
		// Small rates make the one-second limit reachable by the fuzzer.
		format := frame.Format{SampleRate: rates[int(r)%len(rates)] / 100, Channels: 1}
		pcm, err := decodeAudio(format, data)
		switch {
		case len(data)%2 != 0:
			if err == nil || checkProtocolError(t, err) != "odd_audio" {
				t.Fatalf("%d bytes: err %v, want odd_audio", len(data), err)
			}
		case len(data) > 2*format.SampleRate:
			if err == nil || checkProtocolError(t, err) != "too_large" {
				t.Fatalf("%d bytes at %d Hz: err %v, want too_large", len(data), format.SampleRate, err)
			}
		case err != nil:
			t.Fatalf("%d bytes at %d Hz: %v", len(data), format.SampleRate, err)
		default:
			if len(pcm) != len(data)/2 {
				t.Fatalf("%d samples from %d bytes", len(pcm), len(data))
			}
			for i, v := range pcm {
				if want := int16(binary.LittleEndian.Uint16(data[2*i:])); v != want {
					t.Fatalf("sample %d = %d, want %d", i, v, want)
				}
			}
		}
	})
}

func BenchmarkDecodeAudio(b *testing.B) {
	data := make([]byte, 2*320) // 20 ms at 16 kHz
	for i := range data {
		data[i] = byte(i)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeAudio(frame.Mono16k, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvent(b *testing.B) {
	c := transport.NewConn(transport.ConnConfig{Kind: Kind, Queue: 1})
	f := &frame.Transcript{Meta: frame.Meta{Turn: 3}, Text: "an interim hypothesis of some length", Final: false}
	b.ReportAllocs()
	for b.Loop() {
		c.Notify(f)
		<-c.Outgoing()
	}
}
