package transport

import (
	"crypto/tls"
	"net"
)

// SendBuffer bounds the kernel's send buffer of each WebSocket connection
// an edge upgrades (BoundSendBuffer). Left to autotuning it grows to
// net.ipv4.tcp_wmem's maximum (4 MiB on Linux), minutes of the bot's voice,
// and a client that stops reading would be noticed (ErrSlowClient) only
// once that much had piled up. 64 KiB (Linux doubles it) is more than a
// second of audio at 48 kHz and carries the voice over round trips of up
// to a second.
const SendBuffer = 64 << 10

// BoundSendBuffer applies SendBuffer to nc (under TLS, to the TCP
// connection beneath); a connection without a send buffer is left alone.
func BoundSendBuffer(nc net.Conn) {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	if b, ok := nc.(interface{ SetWriteBuffer(int) error }); ok {
		b.SetWriteBuffer(SendBuffer)
	}
}
