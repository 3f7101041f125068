package redis_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
	"github.com/voiced-dev/voiced/agents/durable/redis"
)

// The tests start their own redis-server (see startRedis); without one
// they are skipped unless VOICED_REQUIRE_SERVICES=1 (scripts/redis-test.sh).

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) != "" {
		// A child of TestTwoServersOneKilled: one server.
		if err := serverMain(); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	durabletest.CrashMain(m, openSpec)
}

// openSpec opens the store on the server at address spec (the crash
// test's child processes).
func openSpec(spec string) (durable.Store, func(), error) {
	c := goredis.NewClient(&goredis.Options{Addr: spec})
	return redis.New(c, "{crash}:"), func() { c.Close() }, nil
}

// opener starts a server and reconnects to it, as a restarted process
// would, with keys under a prefix of the test's own.
func opener(t *testing.T) func() durable.Store {
	addr := startRedis(t)
	prefix := "{test:" + t.Name() + "}:"
	var cur *goredis.Client
	t.Cleanup(func() {
		if cur != nil {
			cur.Close()
		}
	})
	return func() durable.Store {
		if cur != nil {
			cur.Close()
		}
		cur = goredis.NewClient(&goredis.Options{Addr: addr})
		return redis.New(cur, prefix)
	}
}

func TestConformance(t *testing.T) { durabletest.Run(t, opener) }

func TestCrash(t *testing.T) { durabletest.Crash(t, startRedis(t), openSpec) }

// BenchmarkStep measures one checkpointed step on a local Redis.
func BenchmarkStep(b *testing.B) {
	c := goredis.NewClient(&goredis.Options{Addr: startRedis(b)})
	defer c.Close()
	durabletest.BenchSteps(b, redis.New(c, "{bench}:"))
}

// startRedis starts a redis-server on a free loopback port, in a temporary
// directory, for the test's lifetime. Without redis-server on PATH the
// test is skipped, or fails when VOICED_REQUIRE_SERVICES=1.
func startRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server not installed (apt-get install redis-server) and VOICED_REQUIRE_SERVICES=1")
		}
		t.Skip("redis-server not installed (apt-get install redis-server); set VOICED_REQUIRE_SERVICES=1 to fail instead")
	}
	dir := t.TempDir()
	for try := 0; ; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitRedis(addr, exited) {
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			return addr
		}
		cmd.Process.Kill()
		<-exited
		if try == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not start:\n%s", log)
		}
	}
}

// waitRedis polls the server until it answers PING, it exits, or 15 s pass.
func waitRedis(addr string, exited <-chan struct{}) bool {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	limit := time.Now().Add(15 * time.Second)
	for time.Now().Before(limit) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
