package carrier

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// What the serializers share: JSON in and out, base64 payloads, and the
// audio encodings carriers use.

// mono returns a mono format at hz.
func mono(hz int) frame.Format { return frame.Format{SampleRate: hz, Channels: 1} }

// parseJSON decodes a text message into v: a JSON object, or a
// *transport.ProtocolError.
func parseJSON(binary bool, data []byte, v any) error {
	if binary {
		return transport.BadInput("unexpected_binary", "binary message on a JSON protocol")
	}
	if !utf8.Valid(data) {
		return transport.BadInput("invalid_utf8", "message is not valid UTF-8")
	}
	if !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return transport.BadInput("invalid_json", "message is not a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return transport.BadInput("invalid_json", "%v", err)
	}
	return nil
}

// text marshals v as a text message.
func text(v any) transport.Outgoing {
	b, err := json.Marshal(v)
	if err != nil {
		panic("carrier: marshal: " + err.Error()) // only fixed shapes are marshalled
	}
	return transport.Outgoing{Data: b}
}

// maxPayload bounds the audio of one message: one second of 16-bit audio
// at the highest rate a carrier uses.
const maxPayload = 2 * 48000

// payload decodes a base64 audio payload.
func payload(s string) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > maxPayload {
		return nil, transport.BadInput("too_large", "audio payload of %d characters", len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, transport.BadInput("bad_audio", "payload: %v", err)
	}
	return b, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// encoding is an audio encoding on a carrier's wire.
type encoding interface {
	decode(b []byte) ([]int16, error)
	encode(pcm []int16) []byte
}

// g711 is G.711 μ-law or A-law (audio's table-driven codecs).
type g711 struct {
	dec func(dst []int16, b []byte) []int16
	enc func(dst []byte, pcm []int16) []byte
}

var (
	pcmu = g711{audio.DecodeULaw, audio.EncodeULaw}
	pcma = g711{audio.DecodeALaw, audio.EncodeALaw}
)

func (g g711) decode(b []byte) ([]int16, error) { return g.dec(make([]int16, 0, len(b)), b), nil }
func (g g711) encode(pcm []int16) []byte        { return g.enc(make([]byte, 0, len(pcm)), pcm) }

// l16 is 16-bit little-endian linear PCM.
type l16 struct{}

func (l16) decode(b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return nil, transport.BadInput("odd_audio", "audio of %d bytes is not whole 16-bit samples", len(b))
	}
	pcm, err := audio.DecodePCM16(make([]int16, 0, len(b)/2), b)
	if err != nil {
		return nil, transport.BadInput("odd_audio", "%v", err)
	}
	return pcm, nil
}

func (l16) encode(pcm []int16) []byte { return audio.EncodePCM16(make([]byte, 0, 2*len(pcm)), pcm) }

// digit reads a DTMF key from a carrier's string ("5", "*", "#", "a").
func digit(s string) (byte, error) {
	if len(s) == 1 {
		d := s[0]
		if d >= 'a' && d <= 'd' {
			d -= 'a' - 'A'
		}
		if frame.DTMFDigit(d) {
			return d, nil
		}
	}
	return 0, transport.BadInput("bad_dtmf", "DTMF digit %q", s)
}
