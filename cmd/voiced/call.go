package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/transport/sip"
)

// callCmd is `voiced call [flags] TO`: it loads the configuration's
// agents, listens for SIP, dials TO through the configured trunk, prints
// the call's events as JSON lines on stdout, and returns when the call
// ends (Ctrl-C hangs up). It fails when the call was never answered.
func callCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: built-in demo)")
	sipAddr := fs.String("sip-addr", "", "SIP listen address, UDP and TCP (default from config [sip] listen, else 0.0.0.0:5060)")
	from := fs.String("from", "", "caller ID: a user part or a SIP URI (default: the trunk's)")
	agent := fs.String("agent", "", "the agent that talks (default: the configuration's entry)")
	trunk := fs.String("trunk", "", "the trunk to call through (default: the first configured)")
	level := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: voiced call [--config F] [--sip-addr HOST:PORT] [--from ID] [--agent A] [--trunk T] sip:user@host")
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
	if *sipAddr != "" {
		cfg.SIP.Listen = *sipAddr
	}
	if cfg.SIP.Listen == "" {
		cfg.SIP.Listen = "0.0.0.0:5060"
	}
	// Dialing out needs no TLS listener: one configured is served only by
	// voiced serve.
	cfg.SIP.TLSListen = ""
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := server.New(cfg, log)
	if err := srv.Load(); err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.ListenSIP(ctx, cfg.SIP.Listen, nil); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	c, err := srv.Dial(server.CallRequest{To: fs.Arg(0), From: *from, Agent: *agent, Trunk: *trunk})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	sent, answered := 0, false
	for {
		evs, changed := c.Events()
		for _, ev := range evs[sent:] {
			enc.Encode(ev)
			answered = answered || ev.State == sip.StateAnswered
		}
		sent = len(evs)
		if last := evs[len(evs)-1]; last.State == sip.StateEnded {
			if !answered {
				return fmt.Errorf("call: not answered (%s %d)", last.Reason, last.Code)
			}
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			c.Hangup()
			stop()
		}
	}
}
