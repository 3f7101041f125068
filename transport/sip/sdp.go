package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/voiced-dev/voiced/frame"
)

// SDP offer/answer (RFC 3264) over session descriptions (RFC 8866).

var (
	// ErrNoCodec means the offer has no audio stream in a codec voiced
	// speaks (answered 488 Not Acceptable Here).
	ErrNoCodec = errors.New("sip: no common codec")
	// ErrBadSDP wraps an unparsable session description.
	ErrBadSDP = errors.New("sip: bad SDP")
)

// Direction is an SDP media direction attribute.
type Direction string

const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// reverse is the direction that answers d: the answerer receives what the
// offerer sends.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// sends reports whether the side with direction d sends media.
func (d Direction) sends() bool { return d == SendRecv || d == SendOnly }

// codec is an audio encoding voiced speaks over RTP.
type codec struct {
	name string // as in rtpmap
	// pt is the static payload type (RFC 3551), or for a dynamic one the
	// type voiced offers.
	pt      uint8
	dynamic bool
	rate    int // RTP clock rate, as in rtpmap
	// channels is the rtpmap's channel count when it must be written
	// (Opus: always 2, RFC 7587 §7), else 0.
	channels int
	// audioRate is the sample rate of the audio: G.722's is 16000 although
	// its RTP clock runs at 8000 (RFC 3551 §4.5.2).
	audioRate int
}

var (
	pcmu = codec{name: "PCMU", pt: 0, rate: 8000, audioRate: 8000}
	pcma = codec{name: "PCMA", pt: 8, rate: 8000, audioRate: 8000}
	g722 = codec{name: "G722", pt: 9, rate: 8000, audioRate: 16000}
	// Opus (RFC 7587): 48 kHz, mono here, in-band FEC on.
	opusCodec = codec{name: "opus", pt: 111, dynamic: true, rate: 48000, channels: 2, audioRate: 48000}
)

// supported lists the codecs voiced speaks, in its order of preference:
// wideband G.722 first (what phone networks carry, and cheap), then Opus,
// then G.711.
var supported = []codec{g722, opusCodec, pcmu, pcma}

// rtpmap is the codec's rtpmap encoding: name/rate[/channels].
func (c codec) rtpmap() string {
	if c.channels > 0 {
		return fmt.Sprintf("%s/%d/%d", c.name, c.rate, c.channels)
	}
	return fmt.Sprintf("%s/%d", c.name, c.rate)
}

// fmtp is the codec's format parameters line value, "" for none.
func (c codec) fmtp() string {
	if c == opusCodec {
		// Mono is what voiced sends and prefers to receive; FEC lets a
		// lost packet be rebuilt from the next.
		return "useinbandfec=1; stereo=0; sprop-stereo=0"
	}
	return ""
}

// tsStep is the RTP timestamp increment of a packet of ptime.
func (c codec) tsStep() uint32 { return uint32(c.rate / 50) }

// format is the format of the codec's audio.
func (c codec) format() frame.Format {
	return frame.Format{SampleRate: c.audioRate, Channels: 1}
}

// samples is the number of audio samples in one packet of ptime.
func (c codec) samples() int { return c.format().Samples(ptime) }

// rank orders the codecs of an offer: lower is better. voiced prefers
// G.722 (16 kHz speech for the recognizer) and otherwise takes the
// offerer's order.
func (c codec) rank() int {
	switch c {
	case g722:
		return 0
	case opusCodec:
		return 1
	}
	return 2
}

// offer is what voiced takes from a peer's session description.
type offer struct {
	addr    netip.AddrPort // where the peer receives RTP
	codec   codec
	pt      uint8 // the payload type the peer uses for codec
	dtmfPT  uint8 // telephone-event payload type, 0 when not offered
	dir     Direction
	index   int // of the audio stream among the offer's media
	streams []*sdp.MediaDescription
}

// hold reports whether the peer holds the call: it does not want our media
// (sendonly, inactive, or the RFC 2543 address 0.0.0.0).
func (o *offer) hold() bool {
	return !o.dir.reverse().sends() || o.addr.Addr().IsUnspecified()
}

// parseOffer picks the first audio stream of body that uses a supported
// codec and chooses its codec: G.722 when offered, else the offerer's
// first G.711 law. prefer, when set, is kept if the stream still offers it
// (a re-INVITE must not switch codecs needlessly), and otherwise a codec of
// prefer's sample rate comes before one of another rate: a call's audio
// format is fixed when it is answered, and the media resamples a codec of
// another rate to it.
func parseOffer(body []byte, prefer *codec) (*offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	sessAddr := connAddr(sd.ConnectionInformation)
	sessDir := direction(sd.Attributes)
	for i, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 ||
			strings.Join(m.MediaName.Protos, "/") != "RTP/AVP" {
			continue
		}
		o := &offer{index: i, streams: sd.MediaDescriptions, dir: SendRecv}
		if sessDir != "" {
			o.dir = sessDir
		}
		if d := direction(m.Attributes); d != "" {
			o.dir = d
		}
		addr := sessAddr
		if a := connAddr(m.ConnectionInformation); a.IsValid() {
			addr = a
		}
		if !addr.IsValid() || m.MediaName.Port.Value <= 0 || m.MediaName.Port.Value > 65535 {
			continue
		}
		o.addr = netip.AddrPortFrom(addr, uint16(m.MediaName.Port.Value))
		maps := rtpmaps(m)
		best := -1                // rank of o.codec; -1 while none
		events := map[int]uint8{} // telephone-event payload types by clock rate
		for _, f := range m.MediaName.Formats {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 127 {
				continue
			}
			name, rate := maps[n].name, maps[n].rate
			if name == "" { // static payload types need no rtpmap
				for _, c := range supported {
					if int(c.pt) == n && !c.dynamic {
						name, rate = c.name, c.rate
					}
				}
			}
			if strings.EqualFold(name, "telephone-event") {
				if _, ok := events[rate]; !ok {
					events[rate] = uint8(n)
				}
				continue
			}
			for _, c := range supported {
				if !strings.EqualFold(c.name, name) || c.rate != rate {
					continue
				}
				r := c.rank() + 1
				switch {
				case prefer == nil:
				case c == *prefer:
					r = 0
				case c.audioRate != prefer.audioRate:
					// Another rate works (the call resamples) but is the
					// last choice: a call's audio format stays what it was
					// when it was answered.
					r += 10
				}
				if best < 0 || r < best {
					o.codec, o.pt, best = c, uint8(n), r
				}
			}
		}
		if best >= 0 {
			// Keys use the audio's RTP clock (RFC 4733 §2.1).
			o.dtmfPT = events[o.codec.rate]
			return o, nil
		}
	}
	return nil, ErrNoCodec
}

type rtpmap struct {
	name string
	rate int
}

// rtpmaps reads a=rtpmap:<pt> <name>/<rate>[/<channels>].
func rtpmaps(m *sdp.MediaDescription) map[int]rtpmap {
	out := map[int]rtpmap{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		n, err := strconv.Atoi(pt)
		if !ok || err != nil {
			continue
		}
		parts := strings.Split(enc, "/")
		if len(parts) < 2 {
			continue
		}
		rate, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		if len(parts) > 2 && parts[2] != "1" && !strings.EqualFold(parts[0], opusCodec.name) {
			continue // stereo (Opus always says 2, RFC 7587 §7, and is decoded to mono)
		}
		out[n] = rtpmap{name: parts[0], rate: rate}
	}
	return out
}

func connAddr(c *sdp.ConnectionInformation) netip.Addr {
	if c == nil || c.Address == nil || c.NetworkType != "IN" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(c.Address.Address)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

func direction(attrs []sdp.Attribute) Direction {
	for _, a := range attrs {
		switch Direction(a.Key) {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return Direction(a.Key)
		}
	}
	return ""
}

// answer is voiced's side of the media session.
type answer struct {
	sessionID uint64
	version   uint64
	addr      netip.Addr // advertised address
	port      int
	codec     codec
	pt        uint8
	dtmfPT    uint8
	dir       Direction
}

// marshal writes the answer to o, rejecting (port 0) the offer's other
// streams. With o nil it writes an offer of every supported codec (for a
// re-INVITE without SDP).
func (a *answer) marshal(o *offer) []byte {
	ipv := "IP4"
	if a.addr.Is6() && !a.addr.Is4In6() {
		ipv = "IP6"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=voiced %d %d IN %s %s\r\ns=voiced\r\nc=IN %s %s\r\nt=0 0\r\n",
		a.sessionID, a.version, ipv, a.addr.Unmap(), ipv, a.addr.Unmap())
	audio := func() {
		if o == nil {
			pts := make([]string, 0, len(supported)+1)
			for _, c := range supported {
				pts = append(pts, strconv.Itoa(int(c.pt)))
			}
			pts = append(pts, strconv.Itoa(int(dtmfOfferPT)), strconv.Itoa(int(dtmfOfferPT48)))
			fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", a.port, strings.Join(pts, " "))
			for _, c := range supported {
				fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", c.pt, c.rtpmap())
				if f := c.fmtp(); f != "" {
					fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.pt, f)
				}
			}
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmfOfferPT, dtmfOfferPT)
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/48000\r\na=fmtp:%d 0-16\r\n", dtmfOfferPT48, dtmfOfferPT48)
		} else {
			if a.dtmfPT != 0 {
				fmt.Fprintf(&b, "m=audio %d RTP/AVP %d %d\r\n", a.port, a.pt, a.dtmfPT)
			} else {
				fmt.Fprintf(&b, "m=audio %d RTP/AVP %d\r\n", a.port, a.pt)
			}
			fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", a.pt, a.codec.rtpmap())
			if f := a.codec.fmtp(); f != "" {
				fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", a.pt, f)
			}
			if a.dtmfPT != 0 {
				fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n", a.dtmfPT, a.codec.rate, a.dtmfPT)
			}
		}
		fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", a.dir)
	}
	if o == nil {
		audio()
		return []byte(b.String())
	}
	for i, m := range o.streams {
		if i == o.index {
			audio()
			continue
		}
		fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", m.MediaName.Media, strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " "))
	}
	return []byte(b.String())
}

// dtmfOfferPT and dtmfOfferPT48 are the telephone-event payload types
// voiced offers, at the 8 kHz clock of G.711 and G.722 and the 48 kHz one of
// Opus.
const (
	dtmfOfferPT   = 101
	dtmfOfferPT48 = 110
)
