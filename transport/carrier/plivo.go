package carrier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/voiced-dev/voiced/transport"
)

// Plivo audio streams, bidirectional (<Stream bidirectional="true"
// keepCallAlive="true">):
// https://www.plivo.com/docs/voice/xml/the-stream-element
//
// In: start (start.callId, start.streamId, start.mediaFormat: audio/x-mulaw
// at 8 kHz or audio/x-l16 at 8 or 16 kHz), media, dtmf, playedStream (a
// checkpoint was played), clearedAudio. Out: playAudio, checkpoint,
// clearAudio.

// Plivo is the Plivo audio-stream vendor. Hangup deletes the live call
// (DELETE /v1/Account/{auth_id}/Call/{call_uuid}/, basic auth with the
// auth id and token).
// Keys are sent with POST /v1/Account/{auth_id}/Call/{call_uuid}/DTMF/
// ({"digits": …}). Plivo's transfer of a live call fetches new Plivo XML
// from a URL (aleg_url) that voiced does not serve, so there is no
// transfer.
var Plivo = Vendor{Name: "plivo", New: func() Codec { return &plivo{} }, Hangup: plivoHangup,
	SendDTMF: plivoDTMF,
	NoTransfer: "Plivo transfers a live call only to a URL serving Plivo XML (aleg_url), " +
		"which voiced does not serve"}

type plivo struct {
	streamID    string
	contentType string
	rate        int
	enc         encoding
}

type plivoMsg struct {
	Event    string `json:"event"`
	StreamID string `json:"streamId"`
	Name     string `json:"name"`
	Start    *struct {
		CallID      string `json:"callId"`
		StreamID    string `json:"streamId"`
		AccountID   string `json:"accountId"`
		MediaFormat struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sampleRate"`
		} `json:"mediaFormat"`
	} `json:"start"`
	Media *struct {
		Track   string `json:"track"`
		Payload string `json:"payload"`
	} `json:"media"`
	DTMF *struct {
		Digit string `json:"digit"`
	} `json:"dtmf"`
}

func (p *plivo) Decode(binary bool, data []byte) (Event, error) {
	var m plivoMsg
	if err := parseJSON(binary, data, &m); err != nil {
		return Event{}, err
	}
	switch m.Event {
	case "start":
		if p.enc != nil {
			return Event{}, transport.BadInput("bad_start", "a second start")
		}
		if m.Start == nil {
			return Event{}, transport.BadInput("bad_start", "start without start")
		}
		f := m.Start.MediaFormat
		switch {
		case f.Encoding == "audio/x-mulaw" && (f.SampleRate == 8000 || f.SampleRate == 0):
			p.enc, p.rate = pcmu, 8000
		case f.Encoding == "audio/x-l16" && (f.SampleRate == 8000 || f.SampleRate == 16000):
			p.enc, p.rate = l16{}, f.SampleRate
		default:
			return Event{}, transport.BadInput("bad_start", "media format %s at %d Hz: want audio/x-mulaw 8000 or audio/x-l16 8000/16000", f.Encoding, f.SampleRate)
		}
		p.contentType = f.Encoding
		p.streamID = m.Start.StreamID
		if p.streamID == "" {
			p.streamID = m.StreamID
		}
		return Event{Kind: Start, Call: Call{StreamID: p.streamID, CallID: m.Start.CallID, AccountID: m.Start.AccountID, In: mono(p.rate), Out: mono(p.rate)}}, nil
	case "media":
		if p.enc == nil || m.Media == nil || m.Media.Track != "" && m.Media.Track != "inbound" {
			return Event{}, nil
		}
		b, err := payload(m.Media.Payload)
		if err != nil {
			return Event{}, err
		}
		pcm, err := p.enc.decode(b)
		return Event{Kind: Audio, Audio: pcm}, err
	case "dtmf":
		if m.DTMF == nil {
			return Event{}, transport.BadInput("bad_dtmf", "dtmf without dtmf")
		}
		d, err := digit(m.DTMF.Digit)
		return Event{Kind: DTMF, Digit: d}, err
	case "playedStream":
		return Event{Kind: Mark, Mark: m.Name}, nil
	case "stop":
		return Event{Kind: Stop}, nil
	case "":
		return Event{}, transport.BadInput("unknown_type", "message has no event")
	}
	return Event{}, nil // clearedAudio and later events
}

type plivoOut struct {
	Event    string `json:"event"`
	StreamID string `json:"streamId,omitempty"`
	Name     string `json:"name,omitempty"`
	Media    *struct {
		ContentType string `json:"contentType"`
		SampleRate  int    `json:"sampleRate"`
		Payload     string `json:"payload"`
	} `json:"media,omitempty"`
}

func (p *plivo) EncodeAudio(pcm []int16) transport.Outgoing {
	return text(plivoOut{Event: "playAudio", Media: &struct {
		ContentType string `json:"contentType"`
		SampleRate  int    `json:"sampleRate"`
		Payload     string `json:"payload"`
	}{p.contentType, p.rate, b64(p.enc.encode(pcm))}})
}

func (p *plivo) EncodeMark(name string) (transport.Outgoing, bool) {
	return text(plivoOut{Event: "checkpoint", StreamID: p.streamID, Name: name}), true
}

func (p *plivo) EncodeClear() transport.Outgoing {
	return text(plivoOut{Event: "clearAudio", StreamID: p.streamID})
}

// PlivoAPI is Plivo's REST API.
const PlivoAPI = "https://api.plivo.com"

func plivoHangup(ctx context.Context, hc *http.Client, api API, c Call) error {
	id, token, err := creds(api, "PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", false)
	if err != nil {
		return err
	}
	u := base(api, PlivoAPI) + "/v1/Account/" + url.PathEscape(id) + "/Call/" + url.PathEscape(c.CallID) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, strings.NewReader(""))
	if err != nil {
		return err
	}
	req.SetBasicAuth(id, token)
	return do(hc, req)
}

// plivoDTMF sends keys on the call (POST …/Call/{call_uuid}/DTMF/).
func plivoDTMF(ctx context.Context, hc *http.Client, api API, c Call, keys string) error {
	id, token, err := creds(api, "PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", false)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]string{"digits": keys})
	u := base(api, PlivoAPI) + "/v1/Account/" + url.PathEscape(id) + "/Call/" + url.PathEscape(c.CallID) + "/DTMF/"
	req, err := restRequest(ctx, http.MethodPost, u, "application/json", string(b))
	if err != nil {
		return err
	}
	req.SetBasicAuth(id, token)
	return doAs(hc, req, ErrDTMF)
}
