package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// quietFactory runs a call's pipeline with nothing between input and
// output: what is measured is the SIP edge.
func quietFactory(ctx context.Context, s *transport.Session) error {
	return runSession(ctx, s, s.Input, s.Output)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkInviteToOK measures, on loopback UDP, the time from sending an
// INVITE to receiving the 200 OK with the SDP answer (the session's
// pipeline is built and takes input in between), one call at a time.
func BenchmarkInviteToOK(b *testing.B) {
	s, err := NewServer(Config{RTPPortMin: 32000, RTPPortMax: 32999}, quietFactory)
	if err != nil {
		b.Fatal(err)
	}
	addr, err := s.Listen(b.Context(), "udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	u := newRawUAC(b, addr)
	var took []time.Duration
	for b.Loop() {
		d, hangup := u.call("demo")
		took = append(took, d)
		hangup()
	}
	b.ReportMetric(float64(percentile(took, 0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(percentile(took, 0.99).Microseconds())/1000, "p99_ms")
}

// BenchmarkRTPPacing runs the RTP senders of 1, 10 and 100 calls on real
// loopback sockets for 5 s and reports how far the interval between two
// packets of a call strays from 20 ms.
func BenchmarkRTPPacing(b *testing.B) {
	for _, calls := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) { benchPacing(b, calls) })
	}
}

func benchPacing(b *testing.B, calls int) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	for b.Loop() {
		var (
			mu   sync.Mutex
			devs []time.Duration
			wg   sync.WaitGroup
		)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for range calls {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			m := newMedia(c, 0, nil, time.Minute, time.Minute)
			m.apply(&offer{addr: netip.AddrPortFrom(to.Addr(), to.Port()), codec: pcmu, dir: SendRecv}, SendRecv, netip.Addr{})
			var last time.Time
			var mine []time.Duration
			m.onSend = func(time.Time) {
				now := time.Now()
				if !last.IsZero() {
					d := now.Sub(last) - ptime
					mine = append(mine, max(d, -d))
				}
				last = now
			}
			wg.Go(func() {
				m.send(ctx)
				c.Close()
				mu.Lock()
				devs = append(devs, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
		b.ReportMetric(float64(percentile(devs, 0.5).Microseconds())/1000, "dev_p50_ms")
		b.ReportMetric(float64(percentile(devs, 0.99).Microseconds())/1000, "dev_p99_ms")
		b.ReportMetric(float64(len(devs)), "intervals")
	}
}
