// Command voiced serves real-time voice conversations with LLM agents.
//
//	voiced serve [--addr HOST:PORT] [--sip-addr HOST:PORT] [--config FILE] [--log-level LEVEL]
//	voiced check-config FILE
//	voiced version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/internal/assembly"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "voiced:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  voiced serve [--addr HOST:PORT] [--sip-addr HOST:PORT] [--config FILE] [--log-level debug|info|warn|error]
  voiced check-config FILE
  voiced bench [--quick] [--out DIR]
` + livekitUsage + `
  voiced version`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		if len(args) != 2 {
			return errors.New(usage)
		}
		cfg, err := config.Load(args[1])
		if err != nil {
			return err
		}
		if err := assembly.Check(cfg); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		fmt.Fprintln(stdout, args[1]+": ok")
		return nil
	case "bench":
		return benchCommand(args[1:], stdout, stderr)
	case "token":
		return tokenCmd(args[1:], stdout, stderr)
	case "agent":
		return agentCmd(args[1:], stderr)
	case "worker":
		return workerCmd(args[1:], stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "voiced", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "devel " + rev
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "devel"
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (default from config, :8080)")
	sipAddr := fs.String("sip-addr", "", "SIP listen address, UDP and TCP (default from config [sip] listen; none)")
	cfgPath := fs.String("config", "", "configuration file (default: built-in demo)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	if *sipAddr != "" {
		cfg.SIP.Listen = *sipAddr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srvx := server.New(cfg, log)
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: srvx.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString())
	if err := srvx.Load(); err != nil {
		srv.Close()
		return err
	}
	defer srvx.Close()
	if cfg.SIP.Listen != "" {
		if err := srvx.ListenSIP(ctx, cfg.SIP.Listen); err != nil {
			srv.Close()
			return err
		}
		log.Info("SIP ready", "uri", "sip:demo@"+cfg.SIP.Listen)
	}
	log.Info("ready", "url", "http://"+displayAddr(ln.Addr()))

	select {
	case err := <-srvErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srvx.Shutdown(sctx)
	return srv.Shutdown(sctx)
}

func displayAddr(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if ok && (t.IP == nil || t.IP.IsUnspecified()) {
		return fmt.Sprintf("localhost:%d", t.Port)
	}
	return a.String()
}
