package bench

import (
	"encoding/binary"
	"time"
)

// PCMUCapture returns a capture (pcap, Ethernet link type; the format of
// https://wiki.wireshark.org/Development/LibpcapFileFormat) of one RTP
// stream (RFC 3550) carrying ulaw as PCMU (payload type 0), 20 ms a packet,
// timestamped in real time. It is what sipp's play_pcap_audio replays: sipp
// rewrites the addresses and ports and keeps the RTP headers and the
// pacing, so the addresses in the capture are placeholders.
func PCMUCapture(ulaw []byte) []byte {
	le := binary.LittleEndian
	be := binary.BigEndian
	var b []byte
	// Global header: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
	b = le.AppendUint32(b, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 1)
	const ssrc = 0x766f6963
	for i := 0; i*160 < len(ulaw); i++ {
		payload := ulaw[i*160 : min(len(ulaw), (i+1)*160)]
		rtp := []byte{0x80, 0}
		if i == 0 {
			rtp[1] |= 0x80 // marker: the talkspurt starts
		}
		rtp = be.AppendUint16(rtp, uint16(i))
		rtp = be.AppendUint32(rtp, uint32(i*160))
		rtp = be.AppendUint32(rtp, ssrc)
		rtp = append(rtp, payload...)
		udp := be.AppendUint16(nil, 40000)
		udp = be.AppendUint16(udp, 6000)
		udp = be.AppendUint16(udp, uint16(8+len(rtp)))
		udp = be.AppendUint16(udp, 0) // no checksum (IPv4)
		udp = append(udp, rtp...)
		ip := []byte{0x45, 0}
		ip = be.AppendUint16(ip, uint16(20+len(udp)))
		ip = append(ip, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1)
		be.PutUint16(ip[10:], ipChecksum(ip))
		ip = append(ip, udp...)
		frame := make([]byte, 12, 14+len(ip)) // destination and source MAC
		frame = be.AppendUint16(frame, 0x0800)
		frame = append(frame, ip...)
		at := time.Duration(i) * 20 * time.Millisecond
		b = le.AppendUint32(b, uint32(at/time.Second))
		b = le.AppendUint32(b, uint32(at%time.Second/time.Microsecond))
		b = le.AppendUint32(b, uint32(len(frame)))
		b = le.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	return b
}

// ipChecksum is the IPv4 header checksum (RFC 791).
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
