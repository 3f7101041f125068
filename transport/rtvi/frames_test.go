package rtvi

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/voiced-dev/voiced/transport"
)

// The bytes client-js's ProtobufFrameSerializer produces (protobuf-ts:
// fields in order, defaults omitted).
var (
	// serializeAudio(Int16Array [1, -2], 16000, 1): id 0 omitted, name "audio".
	clientAudio = []byte{0x12, 0x12, 0x12, 0x05, 'a', 'u', 'd', 'i', 'o', 0x1a, 0x04, 0x01, 0x00, 0xfe, 0xff, 0x20, 0x80, 0x7d, 0x28, 0x01}
	// serializeMessage({}) → data "{}".
	clientMessage = []byte{0x22, 0x04, 0x0a, 0x02, '{', '}'}
)

func TestDecodeClientFrames(t *testing.T) {
	f, err := DecodeFrame(clientAudio)
	if err != nil || f.Kind != FrameAudio || f.SampleRate != 16000 || f.Channels != 1 || !bytes.Equal(f.Audio, []byte{1, 0, 0xfe, 0xff}) {
		t.Errorf("audio: %v, %v", f, err)
	}
	f, err = DecodeFrame(clientMessage)
	if err != nil || f.Kind != FrameMessage || string(f.Data) != "{}" {
		t.Errorf("message: %v, %v", f, err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	f, err := DecodeFrame(EncodeAudio([]int16{1, -2}, 24000, 1))
	if err != nil || f.Kind != FrameAudio || f.SampleRate != 24000 || f.Channels != 1 || !bytes.Equal(f.Audio, []byte{1, 0, 0xfe, 0xff}) {
		t.Errorf("audio: %v, %v", f, err)
	}
	if got := EncodeMessage([]byte("{}")); !bytes.Equal(got, clientMessage) {
		t.Errorf("EncodeMessage = %x, want %x", got, clientMessage)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(clientAudio)
	f.Add(clientMessage)
	f.Add(EncodeAudio(make([]int16, 160), 24000, 1))
	f.Add(EncodeMessage([]byte(`{"label":"rtvi-ai","type":"client-ready","id":"1","data":{}}`)))
	text := protowire.AppendTag(nil, 3, protowire.BytesType)
	text = protowire.AppendString(text, "hi")
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, FrameText, protowire.BytesType), text))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, FrameTranscription, protowire.BytesType), text))
	f.Add([]byte{})
	f.Add([]byte{0x22})
	f.Add([]byte{0x22, 0x05, 0x0a})
	f.Add([]byte{0x28, 0x01})
	f.Add([]byte{0x12, 0x02, 0x20, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := DecodeFrame(data)
		if err != nil {
			var pe *transport.ProtocolError
			if !errors.As(err, &pe) || pe.Code != "bad_frame" || !errors.Is(err, transport.ErrBadInput) {
				t.Fatalf("error %v is not a bad_frame protocol error", err)
			}
			return
		}
		if w.Kind < FrameText || w.Kind > FrameMessage {
			t.Fatalf("kind %d", w.Kind)
		}
		if w.Kind == FrameAudio {
			// What decodes re-encodes to the same content.
			if len(w.Audio)%2 == 0 && w.SampleRate > 0 {
				pcm := make([]int16, len(w.Audio)/2)
				for i := range pcm {
					pcm[i] = int16(uint16(w.Audio[2*i]) | uint16(w.Audio[2*i+1])<<8)
				}
				again, err := DecodeFrame(EncodeAudio(pcm, w.SampleRate, w.Channels))
				if err != nil || !bytes.Equal(again.Audio, w.Audio) || again.SampleRate != w.SampleRate {
					t.Fatalf("re-encoded %v as %v (%v)", w, again, err)
				}
			}
		}
	})
}
