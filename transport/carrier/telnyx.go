package carrier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/voiced-dev/voiced/transport"
)

// Telnyx media streaming over WebSocket, bidirectional with
// stream_bidirectional_mode "rtp" and stream_bidirectional_codec equal to
// the stream's codec:
// https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming
//
// In: connected, start (stream_id, start.call_control_id,
// start.media_format with encoding PCMU or PCMA at 8 kHz), media (base64
// RTP payload), dtmf, mark, error, stop. Out: media, mark, clear.

// Telnyx is the Telnyx media-streaming vendor. Hangup is Call Control's
// hangup command (POST /v2/calls/{call_control_id}/actions/hangup with
// the API key as a bearer token).
// Transfer and keys are the Call Control commands transfer ({"to": …})
// and send_dtmf ({"digits": …}) on the same call.
var Telnyx = Vendor{Name: "telnyx", New: func() Codec { return &telnyx{} }, Hangup: telnyxHangup,
	Transfer: telnyxTransfer, SendDTMF: telnyxDTMF}

type telnyx struct {
	enc encoding
}

type telnyxMsg struct {
	Event    string `json:"event"`
	StreamID string `json:"stream_id"`
	Start    *struct {
		CallControlID string `json:"call_control_id"`
		UserID        string `json:"user_id"`
		MediaFormat   struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"media_format"`
	} `json:"start"`
	Media *struct {
		Track   string `json:"track"`
		Payload string `json:"payload"`
	} `json:"media"`
	DTMF *struct {
		Digit string `json:"digit"`
	} `json:"dtmf"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

func (t *telnyx) Decode(binary bool, data []byte) (Event, error) {
	var m telnyxMsg
	if err := parseJSON(binary, data, &m); err != nil {
		return Event{}, err
	}
	switch m.Event {
	case "start":
		if t.enc != nil {
			return Event{}, transport.BadInput("bad_start", "a second start")
		}
		if m.Start == nil {
			return Event{}, transport.BadInput("bad_start", "start without start")
		}
		f := m.Start.MediaFormat
		switch strings.ToUpper(f.Encoding) {
		case "PCMU", "":
			t.enc = pcmu
		case "PCMA":
			t.enc = pcma
		default:
			return Event{}, transport.BadInput("bad_start", "encoding %q: stream PCMU or PCMA", f.Encoding)
		}
		if f.SampleRate != 0 && f.SampleRate != 8000 || f.Channels > 1 {
			return Event{}, transport.BadInput("bad_start", "media format %d Hz, %d channels: want 8000 mono", f.SampleRate, f.Channels)
		}
		return Event{Kind: Start, Call: Call{StreamID: m.StreamID, CallID: m.Start.CallControlID, AccountID: m.Start.UserID, In: mono(8000), Out: mono(8000)}}, nil
	case "media":
		if t.enc == nil || m.Media == nil || m.Media.Track != "" && m.Media.Track != "inbound" {
			return Event{}, nil
		}
		b, err := payload(m.Media.Payload)
		if err != nil {
			return Event{}, err
		}
		pcm, err := t.enc.decode(b)
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
	return Event{}, nil // connected, error (reported by webhook too), later events
}

type telnyxOut struct {
	Event string `json:"event"`
	Media *struct {
		Payload string `json:"payload"`
	} `json:"media,omitempty"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
}

func (t *telnyx) EncodeAudio(pcm []int16) transport.Outgoing {
	return text(telnyxOut{Event: "media", Media: &struct {
		Payload string `json:"payload"`
	}{b64(t.enc.encode(pcm))}})
}

func (t *telnyx) EncodeMark(name string) (transport.Outgoing, bool) {
	return text(telnyxOut{Event: "mark", Mark: &struct {
		Name string `json:"name"`
	}{name}}), true
}

func (t *telnyx) EncodeClear() transport.Outgoing { return text(telnyxOut{Event: "clear"}) }

// TelnyxAPI is Telnyx's REST API.
const TelnyxAPI = "https://api.telnyx.com"

func telnyxHangup(ctx context.Context, hc *http.Client, api API, c Call) error {
	_, key, err := creds(api, "", "TELNYX_API_KEY", true)
	if err != nil {
		return err
	}
	u := base(api, TelnyxAPI) + "/v2/calls/" + url.PathEscape(c.CallID) + "/actions/hangup"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return do(hc, req)
}

// telnyxAction posts a Call Control command with a JSON body.
func telnyxAction(ctx context.Context, hc *http.Client, api API, c Call, action string, body any, wrap error) error {
	_, key, err := creds(api, "", "TELNYX_API_KEY", true)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := base(api, TelnyxAPI) + "/v2/calls/" + url.PathEscape(c.CallID) + "/actions/" + action
	req, err := restRequest(ctx, http.MethodPost, u, "application/json", string(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	return doAs(hc, req, wrap)
}

func telnyxTransfer(ctx context.Context, hc *http.Client, api API, c Call, target string) error {
	return telnyxAction(ctx, hc, api, c, "transfer", map[string]string{"to": target}, ErrTransfer)
}

func telnyxDTMF(ctx context.Context, hc *http.Client, api API, c Call, keys string) error {
	return telnyxAction(ctx, hc, api, c, "send_dtmf", map[string]string{"digits": keys}, ErrDTMF)
}
