package carrier

import (
	"strconv"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// Exotel Voicebot applet (bidirectional stream):
// https://developer.exotel.com/docs/agentstream/websocket-protocol
//
// Twilio-like JSON with snake_case ids, and base64 16-bit little-endian
// linear PCM (audio/x-raw) at the applet's sample rate (8000 by default,
// 16000 or 24000 with ?sample-rate=). In: connected, start, media, dtmf,
// mark, stop. Out: media, mark, clear. Exotel wants chunks of at least
// 100 ms, in multiples of 320 bytes.

// Exotel is the Exotel Voicebot vendor. It has no Hangup: when the stream
// closes, the call flow goes on to its next applet (a Hangup applet ends
// the call), so closing the WebSocket is how the edge hangs up. The
// Voicebot stream offers no transfer and no way to send keys.
var Exotel = Vendor{Name: "exotel", New: func() Codec { return &exotel{} }, Chunk: 100 * time.Millisecond,
	NoTransfer: "Exotel's Voicebot stream has no transfer; a Connect applet after it in the call flow can take the caller on",
	NoDTMF:     "Exotel's Voicebot stream cannot send keys"}

type exotel struct {
	streamSID string
	started   bool
}

type exotelMsg struct {
	Event     string `json:"event"`
	StreamSID string `json:"stream_sid"`
	Start     *struct {
		StreamSID   string `json:"stream_sid"`
		CallSID     string `json:"call_sid"`
		AccountSID  string `json:"account_sid"`
		MediaFormat struct {
			Encoding   string `json:"encoding"`
			SampleRate string `json:"sample_rate"`
		} `json:"media_format"`
	} `json:"start"`
	Media *struct {
		Payload string `json:"payload"`
	} `json:"media"`
	DTMF *struct {
		Digit string `json:"digit"`
	} `json:"dtmf"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

func (e *exotel) Decode(binary bool, data []byte) (Event, error) {
	var m exotelMsg
	if err := parseJSON(binary, data, &m); err != nil {
		return Event{}, err
	}
	switch m.Event {
	case "start":
		if e.started {
			return Event{}, transport.BadInput("bad_start", "a second start")
		}
		if m.Start == nil {
			return Event{}, transport.BadInput("bad_start", "start without start")
		}
		rate := 8000
		if s := m.Start.MediaFormat.SampleRate; s != "" {
			r, err := strconv.Atoi(s)
			if err != nil || r != 8000 && r != 16000 && r != 24000 {
				return Event{}, transport.BadInput("bad_start", "sample_rate %q: want 8000, 16000 or 24000", s)
			}
			rate = r
		}
		e.streamSID, e.started = m.Start.StreamSID, true
		if e.streamSID == "" {
			e.streamSID = m.StreamSID
		}
		return Event{Kind: Start, Call: Call{StreamID: e.streamSID, CallID: m.Start.CallSID, AccountID: m.Start.AccountSID, In: mono(rate), Out: mono(rate)}}, nil
	case "media":
		if m.Media == nil {
			return Event{}, nil
		}
		b, err := payload(m.Media.Payload)
		if err != nil {
			return Event{}, err
		}
		pcm, err := l16{}.decode(b)
		return Event{Kind: Audio, Audio: pcm}, err
	case "dtmf":
		if m.DTMF == nil {
			return Event{}, transport.BadInput("bad_dtmf", "dtmf without dtmf")
		}
		d, err := digit(m.DTMF.Digit)
		return Event{Kind: DTMF, Digit: d}, err
	case "mark":
		if m.Mark == nil {
			return Event{}, nil
		}
		return Event{Kind: Mark, Mark: m.Mark.Name}, nil
	case "stop":
		return Event{Kind: Stop}, nil
	case "":
		return Event{}, transport.BadInput("unknown_type", "message has no event")
	}
	return Event{}, nil
}

type exotelOut struct {
	Event     string `json:"event"`
	StreamSID string `json:"stream_sid"`
	Media     *struct {
		Payload string `json:"payload"`
	} `json:"media,omitempty"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
}

func (e *exotel) EncodeAudio(pcm []int16) transport.Outgoing {
	return text(exotelOut{Event: "media", StreamSID: e.streamSID, Media: &struct {
		Payload string `json:"payload"`
	}{b64(l16{}.encode(pad(pcm, 160)))}})
}

func (e *exotel) EncodeMark(name string) (transport.Outgoing, bool) {
	return text(exotelOut{Event: "mark", StreamSID: e.streamSID, Mark: &struct {
		Name string `json:"name"`
	}{name}}), true
}

func (e *exotel) EncodeClear() transport.Outgoing {
	return text(exotelOut{Event: "clear", StreamSID: e.streamSID})
}

// pad returns pcm padded with silence to a multiple of n samples.
func pad(pcm []int16, n int) []int16 {
	if r := len(pcm) % n; r != 0 {
		pcm = append(pcm[:len(pcm):len(pcm)], make([]int16, n-r)...)
	}
	return pcm
}
