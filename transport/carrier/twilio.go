package carrier

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/voiced-dev/voiced/transport"
)

// Twilio Media Streams, bidirectional (<Connect><Stream>):
// https://www.twilio.com/docs/voice/media-streams/websocket-messages
//
// In: connected, start (streamSid, callSid, accountSid, mediaFormat),
// media (base64 μ-law at 8 kHz), dtmf, mark (a mark of ours was played),
// stop. Out: media, mark, clear — each with the streamSid.

// Twilio is the Twilio Media Streams vendor. Hangup completes the call
// (POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json with
// Status=completed, basic auth with the account SID and auth token).
//
// Transfer updates the live call with TwiML <Response><Dial>target</Dial>
// </Response> (the same resource, Twiml=…). Twilio has no call-control
// request that sends keys: its <Play digits> would have to replace the
// call's TwiML, which ends the media stream and with it the conversation.
var Twilio = Vendor{Name: "twilio", New: func() Codec { return &twilio{} }, Hangup: twilioHangup,
	Transfer: twilioTransfer,
	NoDTMF: "Twilio sends keys only by replacing the call's TwiML (<Play digits>), " +
		"which would end this media stream and the conversation"}

type twilio struct {
	streamSid string
	enc       encoding
}

type twilioMsg struct {
	Event     string `json:"event"`
	StreamSid string `json:"streamSid,omitempty"`
	Start     *struct {
		StreamSid   string `json:"streamSid"`
		AccountSid  string `json:"accountSid"`
		CallSid     string `json:"callSid"`
		MediaFormat struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sampleRate"`
			Channels   int    `json:"channels"`
		} `json:"mediaFormat"`
	} `json:"start,omitempty"`
	Media *struct {
		Track   string `json:"track,omitempty"`
		Payload string `json:"payload"`
	} `json:"media,omitempty"`
	DTMF *struct {
		Digit string `json:"digit"`
	} `json:"dtmf,omitempty"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
}

func (t *twilio) Decode(binary bool, data []byte) (Event, error) {
	var m twilioMsg
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
		if f.Encoding != "" && f.Encoding != "audio/x-mulaw" || f.SampleRate != 0 && f.SampleRate != 8000 || f.Channels > 1 {
			return Event{}, transport.BadInput("bad_start", "media format %s/%d/%d, want audio/x-mulaw 8000 mono", f.Encoding, f.SampleRate, f.Channels)
		}
		t.streamSid = m.Start.StreamSid
		if t.streamSid == "" {
			t.streamSid = m.StreamSid
		}
		t.enc = pcmu
		return Event{Kind: Start, Call: Call{StreamID: t.streamSid, CallID: m.Start.CallSid, AccountID: m.Start.AccountSid, In: mono(8000), Out: mono(8000)}}, nil
	case "media":
		if t.enc == nil {
			return Event{}, nil // before start: nothing to decode with
		}
		if m.Media == nil || m.Media.Track != "" && m.Media.Track != "inbound" {
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
	return Event{}, nil // connected, and events added later
}

type twilioOut struct {
	Event     string `json:"event"`
	StreamSid string `json:"streamSid"`
	Media     *struct {
		Payload string `json:"payload"`
	} `json:"media,omitempty"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
}

func (t *twilio) EncodeAudio(pcm []int16) transport.Outgoing {
	m := twilioOut{Event: "media", StreamSid: t.streamSid, Media: &struct {
		Payload string `json:"payload"`
	}{b64(t.enc.encode(pcm))}}
	return text(m)
}

func (t *twilio) EncodeMark(name string) (transport.Outgoing, bool) {
	return text(twilioOut{Event: "mark", StreamSid: t.streamSid, Mark: &struct {
		Name string `json:"name"`
	}{name}}), true
}

func (t *twilio) EncodeClear() transport.Outgoing {
	return text(twilioOut{Event: "clear", StreamSid: t.streamSid})
}

// TwilioAPI is Twilio's REST API.
const TwilioAPI = "https://api.twilio.com"

func twilioHangup(ctx context.Context, hc *http.Client, api API, c Call) error {
	sid, token, err := creds(api, "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", true)
	if err != nil {
		return err
	}
	if sid == "" {
		sid = c.AccountID
	}
	u := base(api, TwilioAPI) + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Calls/" + url.PathEscape(c.CallID) + ".json"
	body := url.Values{"Status": {"completed"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sid, token)
	return do(hc, req)
}

// twilioUpdate posts form to the live call's resource (the Calls REST
// resource's update).
func twilioUpdate(ctx context.Context, hc *http.Client, api API, c Call, form url.Values, wrap error) error {
	sid, token, err := creds(api, "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", true)
	if err != nil {
		return err
	}
	if sid == "" {
		sid = c.AccountID
	}
	u := base(api, TwilioAPI) + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Calls/" + url.PathEscape(c.CallID) + ".json"
	req, err := restRequest(ctx, http.MethodPost, u, "application/x-www-form-urlencoded", form.Encode())
	if err != nil {
		return err
	}
	req.SetBasicAuth(sid, token)
	return doAs(hc, req, wrap)
}

// twilioTransfer replaces the call's TwiML with a <Dial> of target: the
// stream stops and Twilio dials the number (<Dial>+1555…</Dial>) or the
// SIP URI (<Dial><Sip>sip:…</Sip></Dial>).
func twilioTransfer(ctx context.Context, hc *http.Client, api API, c Call, target string) error {
	dial := xmlText(target)
	if strings.HasPrefix(target, "sip:") {
		dial = "<Sip>" + dial + "</Sip>"
	}
	twiml := "<Response><Dial>" + dial + "</Dial></Response>"
	return twilioUpdate(ctx, hc, api, c, url.Values{"Twiml": {twiml}}, ErrTransfer)
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
