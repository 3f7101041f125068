package carrier

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// Vonage Voice API WebSocket (an NCCO connect action to a websocket
// endpoint):
// https://developer.vonage.com/en/voice/voice-api/concepts/websockets
//
// Audio travels both ways as binary messages of 16-bit little-endian
// linear PCM, 20 ms each (640 bytes at 16 kHz); events are JSON text. In:
// websocket:connected (the stream's start: its content-type, and the NCCO
// endpoint's headers — put the call's uuid in a "uuid" header, or in a
// call_id query parameter of the URI), websocket:dtmf, websocket:notify
// (a notify of ours was played), websocket:cleared. Out: binary audio,
// {"action":"notify"} and {"action":"clear"}.

// Vonage is the Vonage Voice WebSocket vendor. Hangup modifies the call
// (PUT /v1/calls/{uuid} {"action":"hangup"}) with a JWT of the
// application signed with its private key.
// Transfer is PUT /v1/calls/{uuid} with {"action":"transfer"} and an
// inline NCCO that connects the call to the target; keys are PUT
// /v1/calls/{uuid}/dtmf ({"digits": …}).
var Vonage = Vendor{Name: "vonage", New: func() Codec { return &vonage{} }, Hangup: vonageHangup,
	Transfer: vonageTransfer, SendDTMF: vonageDTMF}

type vonage struct {
	rate    int
	started bool
}

type vonageMsg struct {
	Event       string          `json:"event"`
	ContentType string          `json:"content-type"`
	UUID        string          `json:"uuid"`
	Digit       string          `json:"digit"`
	Payload     json.RawMessage `json:"payload"`
}

func (v *vonage) Decode(binary bool, data []byte) (Event, error) {
	if binary {
		if !v.started {
			return Event{}, transport.BadInput("bad_start", "audio before websocket:connected")
		}
		if len(data) > maxPayload {
			return Event{}, transport.BadInput("too_large", "audio message of %d bytes", len(data))
		}
		pcm, err := l16{}.decode(data)
		return Event{Kind: Audio, Audio: pcm}, err
	}
	var m vonageMsg
	if err := parseJSON(false, data, &m); err != nil {
		return Event{}, err
	}
	switch m.Event {
	case "websocket:connected":
		if v.started {
			return Event{}, transport.BadInput("bad_start", "a second start")
		}
		rate, err := vonageRate(m.ContentType)
		if err != nil {
			return Event{}, err
		}
		v.rate, v.started = rate, true
		return Event{Kind: Start, Call: Call{CallID: m.UUID, In: mono(rate), Out: mono(rate)}}, nil
	case "websocket:dtmf":
		d, err := digit(m.Digit)
		return Event{Kind: DTMF, Digit: d}, err
	case "websocket:notify":
		var p struct {
			Name string `json:"name"`
		}
		json.Unmarshal(m.Payload, &p) // a notify that is not ours has no name
		return Event{Kind: Mark, Mark: p.Name}, nil
	case "":
		return Event{}, transport.BadInput("unknown_type", "message has no event")
	}
	return Event{}, nil // websocket:cleared and later events
}

// vonageRate reads the rate of "audio/l16;rate=16000".
func vonageRate(ct string) (int, error) {
	typ, params, _ := strings.Cut(strings.ReplaceAll(strings.ToLower(ct), " ", ""), ";")
	if typ != "audio/l16" {
		return 0, transport.BadInput("bad_start", "content-type %q: want audio/l16", ct)
	}
	for p := range strings.SplitSeq(params, ";") {
		if v, ok := strings.CutPrefix(p, "rate="); ok {
			r, err := strconv.Atoi(v)
			if err != nil || r != 8000 && r != 16000 && r != 24000 {
				return 0, transport.BadInput("bad_start", "content-type %q: want rate 8000, 16000 or 24000", ct)
			}
			return r, nil
		}
	}
	return 16000, nil
}

func (v *vonage) EncodeAudio(pcm []int16) transport.Outgoing {
	// Vonage takes whole 20 ms frames only.
	return transport.Outgoing{Binary: true, Data: l16{}.encode(pad(pcm, v.rate/50))}
}

func (v *vonage) EncodeMark(name string) (transport.Outgoing, bool) {
	return text(map[string]any{"action": "notify", "payload": map[string]string{"name": name}}), true
}

func (v *vonage) EncodeClear() transport.Outgoing {
	return text(map[string]string{"action": "clear"})
}

// VonageAPI is Vonage's REST API.
const VonageAPI = "https://api.nexmo.com"

func vonageHangup(ctx context.Context, hc *http.Client, api API, c Call) error {
	app, key, err := creds(api, "VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY", false)
	if err != nil {
		return err
	}
	tok, err := vonageJWT(app, key, time.Now())
	if err != nil {
		return err
	}
	u := base(api, VonageAPI) + "/v1/calls/" + url.PathEscape(c.CallID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(`{"action":"hangup"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	return do(hc, req)
}

// vonageJWT signs an application JWT (RS256) with the private key, given
// in PEM or as the path of a PEM file.
func vonageJWT(app, key string, now time.Time) (string, error) {
	pemBytes := []byte(key)
	if !strings.Contains(key, "-----BEGIN") {
		b, err := os.ReadFile(key)
		if err != nil {
			return "", fmt.Errorf("%w: private key: %w", ErrNoCredentials, err)
		}
		pemBytes = b
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return "", fmt.Errorf("%w: private key is not PEM", ErrNoCredentials)
	}
	var rk *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		r, ok := k.(*rsa.PrivateKey)
		if !ok {
			return "", fmt.Errorf("%w: private key is not RSA", ErrNoCredentials)
		}
		rk = r
	} else if r, err2 := x509.ParsePKCS1PrivateKey(blk.Bytes); err2 == nil {
		rk = r
	} else {
		return "", fmt.Errorf("%w: private key: %w", ErrNoCredentials, err)
	}
	var jti [16]byte
	rand.Read(jti[:])
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"application_id": app, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(jti[:]),
	})
	signing := head + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// vonageRequest sends a JSON request to the call's resource (path after
// /v1/calls/{uuid}).
func vonageRequest(ctx context.Context, hc *http.Client, api API, c Call, path string, body any, wrap error) error {
	app, key, err := creds(api, "VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY", false)
	if err != nil {
		return err
	}
	tok, err := vonageJWT(app, key, time.Now())
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := base(api, VonageAPI) + "/v1/calls/" + url.PathEscape(c.CallID) + path
	req, err := restRequest(ctx, http.MethodPut, u, "application/json", string(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return doAs(hc, req, wrap)
}

// vonageTransfer moves the call to an inline NCCO that connects it to
// target: a phone endpoint (the number without its plus) or a SIP one.
func vonageTransfer(ctx context.Context, hc *http.Client, api API, c Call, target string) error {
	ep := map[string]string{"type": "phone", "number": strings.TrimPrefix(target, "+")}
	if strings.HasPrefix(target, "sip:") {
		ep = map[string]string{"type": "sip", "uri": target}
	}
	body := map[string]any{
		"action": "transfer",
		"destination": map[string]any{
			"type": "ncco",
			"ncco": []any{map[string]any{"action": "connect", "endpoint": []any{ep}}},
		},
	}
	return vonageRequest(ctx, hc, api, c, "", body, ErrTransfer)
}

func vonageDTMF(ctx context.Context, hc *http.Client, api API, c Call, keys string) error {
	return vonageRequest(ctx, hc, api, c, "/dtmf", map[string]string{"digits": keys}, ErrDTMF)
}
