package carrier

import (
	"errors"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

// fuzzDecode feeds one vendor's decoder a start message and then the
// fuzzer's message: it must not panic, must fail only with a protocol
// error, must not return more than a second of audio, and the encoders
// must work on whatever state the message left.
func fuzzDecode(f *testing.F, v Vendor) {
	var start in
	for _, g := range goldens() {
		if g.vendor.Name != v.Name {
			continue
		}
		for _, m := range g.in {
			f.Add(m.binary, []byte(m.data))
			if m.want.Kind == Start {
				start = m
			}
		}
	}
	f.Add(false, []byte(`{"event":"media","media":{"payload":"!!"}}`))
	f.Add(true, []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, binary bool, data []byte) {
		c := v.New()
		if _, err := c.Decode(start.binary, []byte(start.data)); err != nil {
			t.Fatal(err)
		}
		ev, err := c.Decode(binary, data)
		if err != nil {
			var pe *transport.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if ev.Kind > Stop {
			t.Fatalf("kind %d", ev.Kind)
		}
		if len(ev.Audio) > maxPayload {
			t.Fatalf("%d samples from one message", len(ev.Audio))
		}
		if ev.Kind == DTMF && !validDigit(ev.Digit) {
			t.Fatalf("digit %q", ev.Digit)
		}
		c.EncodeAudio([]int16{1, 2, 3})
		c.EncodeMark("m")
		c.EncodeClear()
	})
}

func validDigit(d byte) bool {
	_, err := digit(string(d))
	return err == nil
}

func FuzzDecodeTwilio(f *testing.F) { fuzzDecode(f, Twilio) }
func FuzzDecodeTelnyx(f *testing.F) { fuzzDecode(f, Telnyx) }
func FuzzDecodePlivo(f *testing.F)  { fuzzDecode(f, Plivo) }
func FuzzDecodeVonage(f *testing.F) { fuzzDecode(f, Vonage) }
func FuzzDecodeExotel(f *testing.F) { fuzzDecode(f, Exotel) }
