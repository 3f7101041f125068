package webrtc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport/webrtc"
)

// netnsClientEnv, when set to an offer URL, makes the test binary a WebRTC
// client (netnsClient) instead of running the tests: TestNetnsPublicIP
// starts it inside a network namespace.
const netnsClientEnv = "VOICED_TEST_NETNS_OFFER"

func TestMain(m *testing.M) {
	if url := os.Getenv(netnsClientEnv); url != "" {
		os.Exit(netnsClient(url))
	}
	os.Exit(m.Run())
}

// netnsResult is what the client in the namespace reports on stdout.
type netnsResult struct {
	Candidates []string `json:"candidates"` // of the answer: "address port typ"
	Ready      bool     `json:"ready"`
	Error      string   `json:"error,omitempty"`
}

// netnsClient offers to url with pion's default settings (every interface
// of its namespace), waits for the events channel's ready event, and
// prints a netnsResult.
func netnsClient(url string) int {
	res := netnsResult{}
	err := func() error {
		pc, err := pion.NewPeerConnection(pion.Configuration{})
		if err != nil {
			return err
		}
		defer pc.Close()
		out, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "netns")
		if err != nil {
			return err
		}
		if _, err := pc.AddTrack(out); err != nil {
			return err
		}
		dc, err := pc.CreateDataChannel("events", nil)
		if err != nil {
			return err
		}
		ready := make(chan struct{}, 1)
		dc.OnMessage(func(m pion.DataChannelMessage) {
			var ev struct{ Type string }
			if json.Unmarshal(m.Data, &ev) == nil && ev.Type == "ready" {
				select {
				case ready <- struct{}{}:
				default:
				}
			}
		})
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return err
		}
		gathered := pion.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(offer); err != nil {
			return err
		}
		<-gathered
		c := &http.Client{Timeout: 20 * time.Second}
		resp, err := c.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("offer: HTTP %d: %s", resp.StatusCode, body)
		}
		res.Candidates = candidateAddrs(string(body))
		if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(body)}); err != nil {
			return err
		}
		select {
		case <-ready:
			res.Ready = true
			return nil
		case <-time.After(20 * time.Second):
			return fmt.Errorf("no ready event within 20 s (connection %s)", pc.ConnectionState())
		}
	}()
	if err != nil {
		res.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		return 1
	}
	return 0
}

// ipCmd runs ip(8) with args.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// TestNetnsPublicIP runs the client in a network namespace this test
// creates, joined to this one only by a veth pair: its only way to voiced
// is the address voiced announces (webrtc.public_ips) on its single UDP
// port (webrtc.udp_port); voiced's other addresses are unreachable from
// there. It needs root and ip(8), and is skipped otherwise.
func TestNetnsPublicIP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) (iproute2), to create a network namespace")
	}
	id := os.Getpid() % 100000
	ns := fmt.Sprintf("voiced-webrtc-%d", id)
	host, peer := fmt.Sprintf("vdh%d", id), fmt.Sprintf("vdn%d", id)
	// A /30 of its own per process, so that concurrent runs do not meet.
	public := fmt.Sprintf("10.%d.%d.1", 200+id%50, (id/50)%250)
	client := strings.TrimSuffix(public, ".1") + ".2"
	if err := ipCmd("netns", "add", ns); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		ipCmd("link", "del", host) // removes the peer too
		ipCmd("netns", "del", ns)
	})
	for _, args := range [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns},
		{"addr", "add", public + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"-n", ns, "addr", "add", client + "/30", "dev", peer},
		{"-n", ns, "link", "set", peer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}

	pc, err := net.ListenPacket("udp4", public+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	checkGoroutines(t)
	fa := &factory{}
	h := webrtc.NewHandler(webrtc.Config{PublicIPs: []string{public}, UDPPort: port}, fa.run)
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webrtc/offer", h)
	ln, err := net.Listen("tcp", public+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		h.Close()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), netnsClientEnv+"=http://"+ln.Addr().String()+"/webrtc/offer")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res netnsResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		t.Fatalf("client in the namespace: %v; stdout %q; stderr %s", runErr, out, stderr.Bytes())
	}
	if len(res.Candidates) == 0 {
		t.Errorf("the answer has no candidates (%s)", res.Error)
	}
	// Every IPv4 candidate is the announced address on the one port (IPv6
	// ones, if the host has any, are left as they are: the public IPs
	// replace addresses of their own family).
	v4 := 0
	for _, c := range res.Candidates {
		if ip := net.ParseIP(strings.Fields(c)[0]); ip == nil || ip.To4() == nil {
			continue
		}
		v4++
		if c != fmt.Sprintf("%s %d host", public, port) {
			t.Errorf("the answer announces %q; want only %s on port %d", c, public, port)
		}
	}
	if v4 == 0 {
		t.Errorf("the answer has no IPv4 candidate: %q", res.Candidates)
	}
	if !res.Ready || runErr != nil {
		t.Fatalf("the client in the namespace did not get a session: %s (%v)", res.Error, runErr)
	}
	t.Logf("client %s in namespace %s reached voiced at %s:%d (announced candidates %q)", client, ns, public, port, res.Candidates)
}
