package temporal_test

import (
	"bytes"
	"context"
	"fmt"
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
)

// The tests share one Temporal dev server (temporal server start-dev, from
// the CLI that scripts/temporal.sh builds and caches), started by the
// first test that needs it on free loopback ports with its own database
// file, and stopped after the tests. Each test uses its own task queue.

var dev struct {
	once sync.Once
	addr string
	err  error // why there is none
	miss bool  // err: the CLI is not built
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// cliPath is the Temporal CLI: $VOICED_TEMPORAL_CLI, else where
// scripts/temporal.sh caches it.
func cliPath() string {
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

// devServer returns the dev server's frontend address. Without the CLI
// the test is skipped, or fails when VOICED_REQUIRE_SERVICES=1.
func devServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	dev.once.Do(startDev)
	if dev.miss {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%v and VOICED_REQUIRE_SERVICES=1", dev.err)
		}
		t.Skipf("%v; set VOICED_REQUIRE_SERVICES=1 to fail instead", dev.err)
	}
	if dev.err != nil {
		t.Fatal(dev.err)
	}
	return dev.addr
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

func startDev() {
	bin := cliPath()
	if _, err := os.Stat(bin); err != nil {
		dev.err, dev.miss = fmt.Errorf("temporal CLI not built (%v): run scripts/temporal.sh (make services)", err), true
		return
	}
	dir, err := os.MkdirTemp("", "voiced-temporal-")
	if err != nil {
		dev.err = err
		return
	}
	dev.dir = dir
	var log bytes.Buffer
	for try := 0; try < 3; try++ {
		ports, err := freePorts(4)
		if err != nil {
			dev.err = err
			return
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
			dev.err = err
			return
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if waitDev(addr, done) {
			dev.addr, dev.cmd, dev.done = addr, cmd, done
			return
		}
		cmd.Process.Kill()
		<-done
	}
	dev.err = fmt.Errorf("temporal dev server did not start:\n%s", log.String())
}

// waitDev dials the server until it answers, it exits, or 90 s pass (the
// first start creates its database).
func waitDev(addr string, exited <-chan struct{}) bool {
	limit := time.Now().Add(90 * time.Second)
	for time.Now().Before(limit) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: quietLogger()})
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func stopDev() {
	if dev.cmd != nil {
		dev.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-dev.done:
		case <-time.After(10 * time.Second):
			dev.cmd.Process.Kill()
			<-dev.done
		}
	}
	if dev.dir != "" {
		os.RemoveAll(dev.dir)
	}
}
