package transport_test

import (
	"net"
	"syscall"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

// TestSendBufferBounded: the kernel's send buffer of a connection is set,
// not autotuned, so that a client that stops reading is noticed within
// seconds of the bot's voice rather than megabytes.
func TestSendBufferBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	transport.BoundSendBuffer(c)
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	rc.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) })
	if serr != nil {
		t.Fatal(serr)
	}
	// Linux reports twice what was set; the autotuned default starts
	// lower and grows to megabytes.
	if got != 2*transport.SendBuffer {
		t.Errorf("SO_SNDBUF = %d, want %d (SendBuffer set, doubled by Linux)", got, 2*transport.SendBuffer)
	}
}
