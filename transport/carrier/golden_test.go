package carrier

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/transport"
)

// Golden tests: messages shaped as each vendor documents them (the ids
// and payloads are ours) decode to the expected events, and the edge's
// messages encode to the documented shapes, byte for byte.

// in is one carrier message and the event it decodes to.
type in struct {
	binary bool
	data   string
	want   Event
}

// G.711: μ-law 0xFF 0x80 0x00 0xEF is 0, 32124, -32124, 132; A-law 0xD5
// 0xAA is 8, 32256.
var (
	ulawB64 = base64.StdEncoding.EncodeToString([]byte{0xFF, 0x80, 0x00, 0xEF})
	ulawPCM = []int16{0, 32124, -32124, 132}
	alawB64 = base64.StdEncoding.EncodeToString([]byte{0xD5, 0xAA})
	l16B64  = base64.StdEncoding.EncodeToString(audio.EncodePCM16(nil, []int16{1, -2, 300}))
)

type golden struct {
	vendor Vendor
	in     []in
	// What the edge sends once started: audio of outPCM, a mark named
	// "m1", and a clear.
	outPCM             []int16
	audio, mark, clear string
	audioBinary        []byte // for a vendor sending binary audio
}

func goldens() []golden {
	return []golden{{
		vendor: Twilio,
		in: []in{
			{data: `{"event":"connected","protocol":"Call","version":"1.0.0"}`},
			{data: `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0001","streamSid":"MZ0001","callSid":"CA0001","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ0001"}`,
				want: Event{Kind: Start, Call: Call{StreamID: "MZ0001", CallID: "CA0001", AccountID: "AC0001", In: mono(8000), Out: mono(8000)}}},
			{data: `{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"` + ulawB64 + `"},"streamSid":"MZ0001"}`,
				want: Event{Kind: Audio, Audio: ulawPCM}},
			{data: `{"event":"dtmf","streamSid":"MZ0001","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`,
				want: Event{Kind: DTMF, Digit: '1'}},
			{data: `{"event":"mark","sequenceNumber":"4","streamSid":"MZ0001","mark":{"name":"m1"}}`,
				want: Event{Kind: Mark, Mark: "m1"}},
			{data: `{"event":"stop","sequenceNumber":"5","streamSid":"MZ0001","stop":{"accountSid":"AC0001","callSid":"CA0001"}}`,
				want: Event{Kind: Stop}},
		},
		outPCM: ulawPCM,
		audio:  `{"event":"media","streamSid":"MZ0001","media":{"payload":"` + ulawB64 + `"}}`,
		mark:   `{"event":"mark","streamSid":"MZ0001","mark":{"name":"m1"}}`,
		clear:  `{"event":"clear","streamSid":"MZ0001"}`,
	}, {
		vendor: Telnyx,
		in: []in{
			{data: `{"event":"connected","version":"1.0.0"}`},
			{data: `{"event":"start","sequence_number":"1","start":{"user_id":"u-1","call_control_id":"v3:call-1","client_state":"","media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}},"stream_id":"s-1"}`,
				want: Event{Kind: Start, Call: Call{StreamID: "s-1", CallID: "v3:call-1", AccountID: "u-1", In: mono(8000), Out: mono(8000)}}},
			{data: `{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` + alawB64 + `"},"stream_id":"s-1"}`,
				want: Event{Kind: Audio, Audio: []int16{8, 32256}}},
			{data: `{"event":"media","sequence_number":"5","media":{"track":"outbound","chunk":"2","timestamp":"5","payload":"` + alawB64 + `"},"stream_id":"s-1"}`},
			{data: `{"event":"dtmf","stream_id":"s-1","occurred_at":"2026-01-01T00:00:00Z","sequence_number":"6","dtmf":{"digit":"#"}}`,
				want: Event{Kind: DTMF, Digit: '#'}},
			{data: `{"event":"mark","sequence_number":"7","stream_id":"s-1","mark":{"name":"m1"}}`,
				want: Event{Kind: Mark, Mark: "m1"}},
			{data: `{"event":"error","sequence_number":"8","stream_id":"s-1","payload":{"code":100002,"title":"unknown error"}}`},
			{data: `{"event":"stop","sequence_number":"9","stop":{"user_id":"u-1","call_control_id":"v3:call-1"},"stream_id":"s-1"}`,
				want: Event{Kind: Stop}},
		},
		outPCM: []int16{8, 32256},
		audio:  `{"event":"media","media":{"payload":"` + alawB64 + `"}}`,
		mark:   `{"event":"mark","mark":{"name":"m1"}}`,
		clear:  `{"event":"clear"}`,
	}, {
		vendor: Plivo,
		in: []in{
			{data: `{"event":"start","sequenceNumber":1,"start":{"callId":"c-1","streamId":"st-1","accountId":"MA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}},"extra_headers":"a=1"}`,
				want: Event{Kind: Start, Call: Call{StreamID: "st-1", CallID: "c-1", AccountID: "MA1", In: mono(16000), Out: mono(16000)}}},
			{data: `{"event":"media","sequenceNumber":2,"streamId":"st-1","media":{"track":"inbound","timestamp":"1","chunk":1,"payload":"` + l16B64 + `"}}`,
				want: Event{Kind: Audio, Audio: []int16{1, -2, 300}}},
			{data: `{"event":"dtmf","sequenceNumber":3,"streamId":"st-1","dtmf":{"track":"inbound","digit":"7"}}`,
				want: Event{Kind: DTMF, Digit: '7'}},
			{data: `{"event":"playedStream","sequenceNumber":4,"streamId":"st-1","name":"m1"}`,
				want: Event{Kind: Mark, Mark: "m1"}},
			{data: `{"event":"clearedAudio","sequenceNumber":5,"streamId":"st-1"}`},
		},
		outPCM: []int16{1, -2, 300},
		audio:  `{"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":16000,"payload":"` + l16B64 + `"}}`,
		mark:   `{"event":"checkpoint","streamId":"st-1","name":"m1"}`,
		clear:  `{"event":"clearAudio","streamId":"st-1"}`,
	}, {
		vendor: Vonage,
		in: []in{
			{data: `{"event":"websocket:connected","content-type":"audio/l16;rate=16000","uuid":"uuid-1","caller":"447700900000"}`,
				want: Event{Kind: Start, Call: Call{CallID: "uuid-1", In: mono(16000), Out: mono(16000)}}},
			{binary: true, data: string(audio.EncodePCM16(nil, []int16{5, -5})), want: Event{Kind: Audio, Audio: []int16{5, -5}}},
			{data: `{"event":"websocket:dtmf","digit":"5","duration":260}`, want: Event{Kind: DTMF, Digit: '5'}},
			{data: `{"event":"websocket:notify","payload":{"name":"m1"}}`, want: Event{Kind: Mark, Mark: "m1"}},
			{data: `{"event":"websocket:cleared"}`},
		},
		outPCM:      []int16{1, 2},
		audioBinary: audio.EncodePCM16(nil, append([]int16{1, 2}, make([]int16, 318)...)),
		mark:        `{"action":"notify","payload":{"name":"m1"}}`,
		clear:       `{"action":"clear"}`,
	}, {
		vendor: Exotel,
		in: []in{
			{data: `{"event":"connected"}`},
			{data: `{"event":"start","sequence_number":"1","stream_sid":"MZx1","start":{"stream_sid":"MZx1","call_sid":"CAx1","account_sid":"ACx1","from":"+10000000000","to":"+10000000001","custom_parameters":{},"media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}`,
				want: Event{Kind: Start, Call: Call{StreamID: "MZx1", CallID: "CAx1", AccountID: "ACx1", In: mono(8000), Out: mono(8000)}}},
			{data: `{"event":"media","sequence_number":"3","stream_sid":"MZx1","media":{"chunk":"2","timestamp":"200","payload":"` + l16B64 + `"}}`,
				want: Event{Kind: Audio, Audio: []int16{1, -2, 300}}},
			{data: `{"event":"dtmf","sequence_number":"7","stream_sid":"MZx1","dtmf":{"digit":"*","duration":"100"}}`,
				want: Event{Kind: DTMF, Digit: '*'}},
			{data: `{"event":"mark","sequence_number":"15","stream_sid":"MZx1","mark":{"name":"m1"}}`,
				want: Event{Kind: Mark, Mark: "m1"}},
			{data: `{"event":"stop","sequence_number":"20","stream_sid":"MZx1","stop":{"call_sid":"CAx1","account_sid":"ACx1","reason":"callended"}}`,
				want: Event{Kind: Stop}},
		},
		outPCM: []int16{1, -2, 300},
		audio:  `{"event":"media","stream_sid":"MZx1","media":{"payload":"` + base64.StdEncoding.EncodeToString(audio.EncodePCM16(nil, append([]int16{1, -2, 300}, make([]int16, 157)...))) + `"}}`,
		mark:   `{"event":"mark","stream_sid":"MZx1","mark":{"name":"m1"}}`,
		clear:  `{"event":"clear","stream_sid":"MZx1"}`,
	}}
}

func TestGolden(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.vendor.Name, func(t *testing.T) {
			c := g.vendor.New()
			for i, m := range g.in {
				got, err := c.Decode(m.binary, []byte(m.data))
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, m.want) {
					t.Errorf("message %d: %s\n got %+v\nwant %+v", i, m.data, got, m.want)
				}
			}
			a := c.EncodeAudio(g.outPCM)
			if g.audioBinary != nil {
				if !a.Binary || string(a.Data) != string(g.audioBinary) {
					t.Errorf("audio: binary %v, %d bytes; want binary, %d bytes", a.Binary, len(a.Data), len(g.audioBinary))
				}
			} else if a.Binary || string(a.Data) != g.audio {
				t.Errorf("audio:\n got %s\nwant %s", a.Data, g.audio)
			}
			mk, ok := c.EncodeMark("m1")
			if !ok || mk.Binary || string(mk.Data) != g.mark {
				t.Errorf("mark:\n got %s (%v)\nwant %s", mk.Data, ok, g.mark)
			}
			if cl := c.EncodeClear(); cl.Binary || string(cl.Data) != g.clear {
				t.Errorf("clear:\n got %s\nwant %s", cl.Data, g.clear)
			}
		})
	}
}

// Bad messages are protocol errors with their code, never panics or
// silent acceptance.
func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		v      Vendor
		binary bool
		data   string
		code   string
	}{
		{Twilio, false, `not json`, "invalid_json"},
		{Twilio, false, "{\"event\":\"\xff\"}", "invalid_utf8"},
		{Twilio, true, `{}`, "unexpected_binary"},
		{Twilio, false, `{"sequenceNumber":"1"}`, "unknown_type"},
		{Twilio, false, `{"event":"start","start":{"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}}}`, "bad_start"},
		{Twilio, false, `{"event":"dtmf","dtmf":{"digit":"x"}}`, "bad_dtmf"},
		{Telnyx, false, `{"event":"start","start":{"media_format":{"encoding":"OPUS","sample_rate":48000}}}`, "bad_start"},
		{Plivo, false, `{"event":"start","start":{"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":16000}}}`, "bad_start"},
		{Vonage, true, "\x01\x00", "bad_start"},
		{Vonage, false, `{"event":"websocket:connected","content-type":"audio/pcmu;rate=8000"}`, "bad_start"},
		{Vonage, false, `{"event":"websocket:connected","content-type":"audio/l16;rate=44100"}`, "bad_start"},
		{Exotel, false, `{"event":"start","start":{"media_format":{"sample_rate":"11025"}}}`, "bad_start"},
		{Exotel, false, `{"event":"media","media":{"payload":"AAA"}}`, "bad_audio"},
		{Exotel, false, `{"event":"media","media":{"payload":"AAAA"}}`, "odd_audio"},
	}
	for _, tc := range cases {
		_, err := tc.v.New().Decode(tc.binary, []byte(tc.data))
		var pe *transport.ProtocolError
		if !errors.As(err, &pe) || pe.Code != tc.code || !errors.Is(err, transport.ErrBadInput) {
			t.Errorf("%s %q: err %v, want code %s", tc.v.Name, tc.data, err, tc.code)
		}
	}
}

// A second start is refused without touching the stream's state, which
// the encoders read from other goroutines.
func TestSecondStartRefused(t *testing.T) {
	for _, g := range goldens() {
		c := g.vendor.New()
		var start in
		for _, m := range g.in {
			if m.want.Kind == Start {
				start = m
				if _, err := c.Decode(m.binary, []byte(m.data)); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := c.EncodeClear()
		_, err := c.Decode(start.binary, []byte(start.data))
		var pe *transport.ProtocolError
		if !errors.As(err, &pe) || pe.Code != "bad_start" {
			t.Errorf("%s: second start: %v, want bad_start", g.vendor.Name, err)
		}
		if after := c.EncodeClear(); string(after.Data) != string(before.Data) {
			t.Errorf("%s: second start changed the state: %s → %s", g.vendor.Name, before.Data, after.Data)
		}
	}
}
