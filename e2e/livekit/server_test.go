// Package livekit holds the LiveKit integration tests: a real
// livekit-server --dev on loopback (built and cached by
// scripts/livekit-server.sh), voiced joining rooms as an agent or as
// worker processes with the real pipeline (Silero VAD, pocketsphinx, flite,
// the scripted model), and Go participants that speak flite-synthesized
// speech into the rooms.
package livekit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/internal/testenv"
	"github.com/voiced-dev/voiced/session"
)

const (
	apiKey    = "devkey"
	apiSecret = "secret"
)

// require skips the test (or fails it under VOICED_REQUIRE_SERVICES=1)
// with msg.
func require(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// serverBinary finds the livekit-server that scripts/livekit-server.sh
// built.
func serverBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VOICED_LIVEKIT_SERVER"); p != "" {
		return p
	}
	cache := os.Getenv("VOICED_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "voiced")
	}
	p := filepath.Join(cache, "bin", "livekit-server")
	if _, err := os.Stat(p); err != nil {
		require(t, "livekit-server not built (%v): run scripts/livekit-server.sh", err)
	}
	return p
}

// lkServer is a livekit-server --dev listening on loopback only.
type lkServer struct {
	URL  string // ws://127.0.0.1:PORT
	HTTP string
	log  string
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startLiveKit runs a LiveKit server for the test; rooms are not created
// on join (auto_create false), so joining an unknown room is an error.
func startLiveKit(t *testing.T) *lkServer {
	t.Helper()
	bin := serverBinary(t)
	dir := t.TempDir()
	port := freePort(t, "tcp")
	cfg := fmt.Sprintf(`port: %d
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: %d
  tcp_port: %d
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  interfaces:
    includes: [lo]
room:
  auto_create: false
  departure_timeout: 1
logging:
  level: warn
`, port, freePort(t, "udp"), freePort(t, "tcp"))
	cfgPath := filepath.Join(dir, "livekit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "livekit.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--dev", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &lkServer{URL: fmt.Sprintf("ws://127.0.0.1:%d", port), HTTP: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("livekit-server log (tail):\n%s", tail(string(b), 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.HTTP + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("livekit-server did not start: %v\n%s", err, tail(string(b), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// createRoom creates a room, dispatching the named agent if agent != "".
func (s *lkServer) createRoom(t *testing.T, name, agent string) {
	t.Helper()
	rc := lksdk.NewRoomServiceClient(s.HTTP, apiKey, apiSecret)
	req := &livekit.CreateRoomRequest{Name: name, EmptyTimeout: 60, DepartureTimeout: 1}
	if agent != "" {
		req.Agents = []*livekit.RoomAgentDispatch{{AgentName: agent}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := rc.CreateRoom(ctx, req); err != nil {
		t.Fatalf("create room %s: %v", name, err)
	}
}

// checkModels skips the test when the VAD model is missing.
func checkModels(t *testing.T) { testenv.RequireModels(t) }

// builder loads the real pipeline with the built-in configuration.
func builder(t *testing.T) *session.Builder {
	t.Helper()
	checkModels(t)
	s := server.New(config.Default(), testLogger())
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Builder()
}

func testLogger() *slog.Logger {
	if testing.Verbose() || os.Getenv("VOICED_LK_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// hasLine reports whether the file at path contains s.
func hasLine(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}
