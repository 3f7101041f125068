package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/voiced-dev/voiced/audio"
)

// The carriers' framings as the carriers speak them (the message shapes of
// transport/carrier's golden tests, from the vendors' documentation): what
// a carrier sends to open a stream, stream the caller's audio, report a
// key and a played mark, and what it accepts from voiced.

const e2eStream = "stream-e2e"

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

func ulaw(s string) ([]int16, error) {
	b, err := unb64(s)
	return audio.DecodeULaw(nil, b), err
}

func l16(b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%d bytes of 16-bit audio", len(b))
	}
	return audio.DecodePCM16(nil, b)
}

func l16b64(s string) ([]int16, error) {
	b, err := unb64(s)
	if err != nil {
		return nil, err
	}
	return l16(b)
}

// streamMsg is the union of the JSON messages voiced sends the carriers.
type streamMsg struct {
	Event     string `json:"event"`
	Action    string `json:"action"` // Vonage
	StreamSid string `json:"streamSid"`
	StreamID  string `json:"streamId"`   // Plivo
	StreamSID string `json:"stream_sid"` // Exotel
	Name      string `json:"name"`       // Plivo checkpoint
	Media     struct {
		Payload     string `json:"payload"`
		ContentType string `json:"contentType"`
		SampleRate  int    `json:"sampleRate"`
	} `json:"media"`
	Mark struct {
		Name string `json:"name"`
	} `json:"mark"`
	Payload struct {
		Name string `json:"name"`
	} `json:"payload"` // Vonage notify
}

func parseText(binary bool, data []byte) (streamMsg, error) {
	var m streamMsg
	if binary {
		return m, fmt.Errorf("a binary message")
	}
	return m, json.Unmarshal(data, &m)
}

// Twilio Media Streams: μ-law 8 kHz in JSON; mark and clear.
type twilioWire struct{}

func (twilioWire) rate() int { return 8000 }

func (twilioWire) start() []wsMsg {
	return []wsMsg{
		jsonMsg(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"}),
		jsonMsg(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZe2e", "start": map[string]any{
			"accountSid": "ACe2e", "streamSid": "MZe2e", "callSid": "CAe2e", "tracks": []string{"inbound"},
			"mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
		}}),
	}
}

func (twilioWire) media(pcm []int16, seq int) wsMsg {
	return jsonMsg(map[string]any{"event": "media", "streamSid": "MZe2e", "media": map[string]any{
		"track": "inbound", "chunk": seq, "payload": b64(audio.EncodeULaw(nil, pcm)),
	}})
}

func (twilioWire) dtmf(d string) wsMsg {
	return jsonMsg(map[string]any{"event": "dtmf", "streamSid": "MZe2e", "dtmf": map[string]string{"track": "inbound_track", "digit": d}})
}

func (twilioWire) markDone(name string) wsMsg {
	return jsonMsg(map[string]any{"event": "mark", "streamSid": "MZe2e", "mark": map[string]string{"name": name}})
}

func (twilioWire) decode(binary bool, data []byte) (fromVoiced, error) {
	m, err := parseText(binary, data)
	if err != nil || m.StreamSid != "MZe2e" {
		return fromVoiced{}, fmt.Errorf("not a Twilio message of this stream (%v)", err)
	}
	return jsonEvent(m.Event, "media", "mark", "clear", m.Media.Payload, m.Mark.Name, ulaw)
}

// jsonEvent decodes the media, mark and clear events of the JSON vendors.
func jsonEvent(event, media, mark, clear, payload, name string, dec func(string) ([]int16, error)) (fromVoiced, error) {
	switch event {
	case media:
		pcm, err := dec(payload)
		return fromVoiced{kind: "media", pcm: pcm}, err
	case mark:
		if name == "" {
			return fromVoiced{}, fmt.Errorf("a %s without a name", mark)
		}
		return fromVoiced{kind: "mark", mark: name}, nil
	case clear:
		return fromVoiced{kind: "clear"}, nil
	}
	return fromVoiced{}, fmt.Errorf("event %q", event)
}

// Telnyx media streaming, bidirectional RTP mode: PCMU 8 kHz in JSON.
type telnyxWire struct{}

func (telnyxWire) rate() int { return 8000 }

func (telnyxWire) start() []wsMsg {
	return []wsMsg{
		jsonMsg(map[string]any{"event": "connected", "version": "1.0.0"}),
		jsonMsg(map[string]any{"event": "start", "sequence_number": "1", "stream_id": e2eStream, "start": map[string]any{
			"user_id": "user-e2e", "call_control_id": "call-e2e", "client_state": "",
			"media_format": map[string]any{"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
		}}),
	}
}

func (telnyxWire) media(pcm []int16, seq int) wsMsg {
	return jsonMsg(map[string]any{"event": "media", "sequence_number": fmt.Sprint(seq + 1), "stream_id": e2eStream, "media": map[string]any{
		"track": "inbound", "chunk": fmt.Sprint(seq), "timestamp": fmt.Sprint(seq * 20), "payload": b64(audio.EncodeULaw(nil, pcm)),
	}})
}

func (telnyxWire) dtmf(d string) wsMsg {
	return jsonMsg(map[string]any{"event": "dtmf", "stream_id": e2eStream, "dtmf": map[string]string{"digit": d}})
}

func (telnyxWire) markDone(name string) wsMsg {
	return jsonMsg(map[string]any{"event": "mark", "stream_id": e2eStream, "mark": map[string]string{"name": name}})
}

func (telnyxWire) decode(binary bool, data []byte) (fromVoiced, error) {
	m, err := parseText(binary, data)
	if err != nil {
		return fromVoiced{}, err
	}
	return jsonEvent(m.Event, "media", "mark", "clear", m.Media.Payload, m.Mark.Name, ulaw)
}

// Plivo audio streams, bidirectional, 16 kHz linear PCM: playAudio,
// checkpoint (answered with playedStream) and clearAudio.
type plivoWire struct{}

func (plivoWire) rate() int { return 16000 }

func (plivoWire) start() []wsMsg {
	return []wsMsg{jsonMsg(map[string]any{"event": "start", "sequenceNumber": 1, "start": map[string]any{
		"callId": "call-e2e", "streamId": e2eStream, "accountId": "MAe2e", "tracks": []string{"inbound"},
		"mediaFormat": map[string]any{"encoding": "audio/x-l16", "sampleRate": 16000},
	}})}
}

func (plivoWire) media(pcm []int16, seq int) wsMsg {
	return jsonMsg(map[string]any{"event": "media", "sequenceNumber": seq + 1, "streamId": e2eStream, "media": map[string]any{
		"track": "inbound", "timestamp": fmt.Sprint(seq * 20), "chunk": seq, "payload": b64(audio.EncodePCM16(nil, pcm)),
	}})
}

func (plivoWire) dtmf(d string) wsMsg {
	return jsonMsg(map[string]any{"event": "dtmf", "streamId": e2eStream, "dtmf": map[string]string{"track": "inbound", "digit": d}})
}

func (plivoWire) markDone(name string) wsMsg {
	return jsonMsg(map[string]any{"event": "playedStream", "streamId": e2eStream, "name": name})
}

func (plivoWire) decode(binary bool, data []byte) (fromVoiced, error) {
	m, err := parseText(binary, data)
	if err != nil {
		return fromVoiced{}, err
	}
	switch {
	case m.Event == "playAudio" && (m.Media.ContentType != "audio/x-l16" || m.Media.SampleRate != 16000):
		return fromVoiced{}, fmt.Errorf("playAudio of %s at %d Hz, want the stream's audio/x-l16 at 16000", m.Media.ContentType, m.Media.SampleRate)
	case (m.Event == "checkpoint" || m.Event == "clearAudio") && m.StreamID != e2eStream:
		return fromVoiced{}, fmt.Errorf("%s of stream %q", m.Event, m.StreamID)
	}
	return jsonEvent(m.Event, "playAudio", "checkpoint", "clearAudio", m.Media.Payload, m.Name, l16b64)
}

// Vonage Voice API WebSocket: binary 16 kHz linear PCM, 20 ms a message;
// JSON text events; notify (echoed as websocket:notify) and clear.
type vonageWire struct{}

func (vonageWire) rate() int { return 16000 }

func (vonageWire) start() []wsMsg {
	return []wsMsg{jsonMsg(map[string]any{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "uuid": "uuid-e2e"})}
}

func (vonageWire) media(pcm []int16, _ int) wsMsg {
	return wsMsg{binary: true, data: audio.EncodePCM16(nil, pcm)}
}

func (vonageWire) dtmf(d string) wsMsg {
	return jsonMsg(map[string]any{"event": "websocket:dtmf", "digit": d, "duration": 250})
}

func (vonageWire) markDone(name string) wsMsg {
	return jsonMsg(map[string]any{"event": "websocket:notify", "payload": map[string]string{"name": name}})
}

func (vonageWire) decode(binary bool, data []byte) (fromVoiced, error) {
	if binary {
		if len(data) != 640 {
			return fromVoiced{}, fmt.Errorf("audio message of %d bytes, want 20 ms at 16 kHz (640)", len(data))
		}
		pcm, err := l16(data)
		return fromVoiced{kind: "media", pcm: pcm}, err
	}
	m, err := parseText(false, data)
	if err != nil {
		return fromVoiced{}, err
	}
	switch m.Action {
	case "notify":
		if m.Payload.Name == "" {
			return fromVoiced{}, fmt.Errorf("a notify without a name")
		}
		return fromVoiced{kind: "mark", mark: m.Payload.Name}, nil
	case "clear":
		return fromVoiced{kind: "clear"}, nil
	}
	return fromVoiced{}, fmt.Errorf("action %q", m.Action)
}

// Exotel Voicebot applet: Twilio-like JSON with base64 linear PCM at 8 kHz.
type exotelWire struct{}

func (exotelWire) rate() int { return 8000 }

func (exotelWire) start() []wsMsg {
	return []wsMsg{
		jsonMsg(map[string]any{"event": "connected"}),
		jsonMsg(map[string]any{"event": "start", "sequence_number": "1", "stream_sid": e2eStream, "start": map[string]any{
			"stream_sid": e2eStream, "call_sid": "call-e2e", "account_sid": "acct-e2e", "from": "+10000000000", "to": "+10000000001",
			"custom_parameters": map[string]any{},
			"media_format":      map[string]any{"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
		}}),
	}
}

func (exotelWire) media(pcm []int16, seq int) wsMsg {
	return jsonMsg(map[string]any{"event": "media", "sequence_number": fmt.Sprint(seq + 1), "stream_sid": e2eStream, "media": map[string]any{
		"chunk": fmt.Sprint(seq), "timestamp": fmt.Sprint(seq * 20), "payload": b64(audio.EncodePCM16(nil, pcm)),
	}})
}

func (exotelWire) dtmf(d string) wsMsg {
	return jsonMsg(map[string]any{"event": "dtmf", "stream_sid": e2eStream, "dtmf": map[string]any{"duration": "250", "digit": d}})
}

func (exotelWire) markDone(name string) wsMsg {
	return jsonMsg(map[string]any{"event": "mark", "stream_sid": e2eStream, "mark": map[string]string{"name": name}})
}

func (exotelWire) decode(binary bool, data []byte) (fromVoiced, error) {
	m, err := parseText(binary, data)
	if err != nil || m.StreamSID != e2eStream {
		return fromVoiced{}, fmt.Errorf("not an Exotel message of this stream (%v)", err)
	}
	return jsonEvent(m.Event, "media", "mark", "clear", m.Media.Payload, m.Mark.Name, l16b64)
}
