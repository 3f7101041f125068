// Package temporaltest runs a Temporal dev server for tests: "temporal
// server start-dev", from the CLI that scripts/temporal.sh builds and
// caches, on free loopback ports with a database file of its own.
package temporaltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Server is a running dev server.
type Server struct {
	Addr string // the frontend's host:port
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// errMissing: the CLI is not built.
type errMissing struct{ error }

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the address of the package's dev server, started by the
// first test that calls it; the package's TestMain stops it with
// StopShared. Without the CLI the test is skipped, or fails when
// VOICED_REQUIRE_SERVICES=1; with -short it is skipped.
func Shared(t testing.TB) string {
	t.Helper()
	skipShort(t)
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	check(t, shared.err)
	return shared.srv.Addr
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
}

// Own starts a dev server for the test alone, stopped when it ends; it
// skips or fails as Shared does.
func Own(t testing.TB) string {
	t.Helper()
	skipShort(t)
	s, err := Start()
	check(t, err)
	t.Cleanup(s.Stop)
	return s.Addr
}

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	var miss errMissing
	if errors.As(err, &miss) {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%v and VOICED_REQUIRE_SERVICES=1", err)
		}
		t.Skipf("%v; set VOICED_REQUIRE_SERVICES=1 to fail instead", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// CLI is the Temporal CLI: $VOICED_TEMPORAL_CLI, else where
// scripts/temporal.sh caches it (${VOICED_CACHE:-~/.cache/voiced}/bin).
func CLI() string {
	if p := os.Getenv("VOICED_TEMPORAL_CLI"); p != "" {
		return p
	}
	cache := os.Getenv("VOICED_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "voiced")
	}
	return filepath.Join(cache, "bin", "temporal")
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start starts a dev server and waits until it answers.
func Start() (*Server, error) {
	bin := CLI()
	if _, err := os.Stat(bin); err != nil {
		return nil, errMissing{fmt.Errorf("temporal CLI not built (%v): run scripts/temporal.sh (make services)", err)}
	}
	dir, err := os.MkdirTemp("", "voiced-temporal-")
	if err != nil {
		return nil, err
	}
	var log bytes.Buffer
	for try := 0; try < 3; try++ {
		ports, err := freePorts(4)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		log.Reset()
		cmd := exec.Command(bin, "server", "start-dev", "--headless",
			"--ip", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--http-port", strconv.Itoa(ports[1]), "--ui-port", strconv.Itoa(ports[2]),
			"--metrics-port", strconv.Itoa(ports[3]),
			"--db-filename", filepath.Join(dir, fmt.Sprintf("temporal-%d.db", try)),
			"--log-level", "error")
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if waitDev(addr, done) {
			return &Server{Addr: addr, cmd: cmd, dir: dir, done: done}, nil
		}
		cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("temporal dev server did not start:\n%s", log.String())
}

// waitDev dials the server until it answers, it exits, or 90 s pass (the
// first start creates its database).
func waitDev(addr string, exited <-chan struct{}) bool {
	quiet := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	limit := time.Now().Add(90 * time.Second)
	for time.Now().Before(limit) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: quiet})
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// Stop stops the server and removes its database.
func (s *Server) Stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}
