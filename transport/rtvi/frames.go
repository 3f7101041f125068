package rtvi

// Pipecat's WebSocket serialization: each binary WebSocket message is one
// protobuf pipecat.Frame (pipecat-ai/pipecat, src/pipecat/frames/frames.proto;
// the same schema compiled into @pipecat-ai/websocket-transport):
//
//	message TextFrame          { uint64 id = 1; string name = 2; string text = 3; }
//	message AudioRawFrame      { uint64 id = 1; string name = 2; bytes audio = 3;
//	                             uint32 sample_rate = 4; uint32 num_channels = 5; optional uint64 pts = 6; }
//	message TranscriptionFrame { uint64 id = 1; string name = 2; string text = 3;
//	                             string user_id = 4; string timestamp = 5; }
//	message MessageFrame       { string data = 1; }
//	message Frame { oneof frame { TextFrame text = 1; AudioRawFrame audio = 2;
//	                              TranscriptionFrame transcription = 3; MessageFrame message = 4; } }
//
// Audio is PCM16LE. MessageFrame.data is one RTVI message as a JSON string.

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/transport"
)

// Kinds of a WireFrame (the oneof's field numbers).
const (
	FrameText          = 1
	FrameAudio         = 2
	FrameTranscription = 3
	FrameMessage       = 4
)

// WireFrame is a decoded pipecat.Frame. Audio and Data alias the decoded
// message.
type WireFrame struct {
	Kind       int
	Text       string // text, transcription
	Audio      []byte // audio: PCM16LE
	SampleRate int
	Channels   int
	Data       []byte // message: the RTVI JSON
}

// DecodeFrame decodes one binary message. A malformed message, or one
// with no frame, is a *transport.ProtocolError with code bad_frame. Unknown
// fields are skipped, as protobuf wants.
func DecodeFrame(b []byte) (WireFrame, error) {
	var f WireFrame
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, badFrame("frame: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num >= FrameText && num <= FrameMessage {
			if typ != protowire.BytesType {
				return f, badFrame("frame field %d has wire type %d", num, typ)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return f, badFrame("frame field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			// The oneof's last member wins, as in protobuf.
			f = WireFrame{Kind: int(num)}
			if err := f.decodeBody(v); err != nil {
				return WireFrame{}, err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return f, badFrame("frame field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if f.Kind == 0 {
		return f, badFrame("message holds no frame")
	}
	return f, nil
}

func badFrame(format string, args ...any) error {
	return transport.BadInput("bad_frame", format, args...)
}

// decodeBody decodes the member message of kind f.Kind.
func (f *WireFrame) decodeBody(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return badFrame("frame %d: %v", f.Kind, protowire.ParseError(n))
		}
		b = b[n:]
		want := protowire.Type(-1)
		switch {
		case f.Kind == FrameMessage && num == 1,
			f.Kind == FrameAudio && num == 3,
			f.Kind != FrameMessage && (num == 2 || num == 3),
			f.Kind == FrameTranscription && (num == 4 || num == 5):
			want = protowire.BytesType
		case f.Kind != FrameMessage && num == 1,
			f.Kind == FrameAudio && num >= 4 && num <= 6:
			want = protowire.VarintType
		}
		if want < 0 {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return badFrame("frame %d field %d: %v", f.Kind, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != want {
			return badFrame("frame %d field %d has wire type %d", f.Kind, num, typ)
		}
		if want == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return badFrame("frame %d field %d: %v", f.Kind, num, protowire.ParseError(n))
			}
			b = b[n:]
			if f.Kind == FrameAudio {
				switch num {
				case 4:
					if v > 1<<20 {
						return badFrame("sample_rate %d", v)
					}
					f.SampleRate = int(v)
				case 5:
					if v > 1<<8 {
						return badFrame("num_channels %d", v)
					}
					f.Channels = int(v)
				}
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return badFrame("frame %d field %d: %v", f.Kind, num, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case f.Kind == FrameMessage && num == 1:
			f.Data = v
		case f.Kind == FrameAudio && num == 3:
			f.Audio = v
		case (f.Kind == FrameText || f.Kind == FrameTranscription) && num == 3:
			f.Text = string(v)
		}
	}
	return nil
}

// EncodeMessage returns the binary message carrying one RTVI message.
func EncodeMessage(msg []byte) []byte {
	inner := protowire.AppendTag(nil, 1, protowire.BytesType)
	inner = protowire.AppendBytes(inner, msg)
	b := protowire.AppendTag(make([]byte, 0, len(inner)+8), FrameMessage, protowire.BytesType)
	return protowire.AppendBytes(b, inner)
}

// EncodeAudio returns the binary message carrying pcm as an AudioRawFrame
// of rate and channels.
func EncodeAudio(pcm []int16, rate, channels int) []byte {
	n := 2 * len(pcm)
	inner := make([]byte, 0, n+32)
	inner = protowire.AppendTag(inner, 2, protowire.BytesType)
	inner = protowire.AppendString(inner, "audio")
	inner = protowire.AppendTag(inner, 3, protowire.BytesType)
	inner = protowire.AppendVarint(inner, uint64(n))
	inner = audio.EncodePCM16(inner, pcm)
	inner = protowire.AppendTag(inner, 4, protowire.VarintType)
	inner = protowire.AppendVarint(inner, uint64(rate))
	inner = protowire.AppendTag(inner, 5, protowire.VarintType)
	inner = protowire.AppendVarint(inner, uint64(channels))
	b := protowire.AppendTag(make([]byte, 0, len(inner)+8), FrameAudio, protowire.BytesType)
	return protowire.AppendBytes(b, inner)
}

// String describes f for logs and tests.
func (f WireFrame) String() string {
	switch f.Kind {
	case FrameAudio:
		return fmt.Sprintf("audio %d bytes %d Hz %d ch", len(f.Audio), f.SampleRate, f.Channels)
	case FrameMessage:
		return "message " + string(f.Data)
	case FrameText:
		return fmt.Sprintf("text %q", f.Text)
	case FrameTranscription:
		return fmt.Sprintf("transcription %q", f.Text)
	}
	return "none"
}
