// Command voiced serves real-time voice conversations with LLM agents.
//
//	voiced serve [--addr HOST:PORT] [--sip-addr HOST:PORT] [--sip-tls-addr HOST:PORT] [--config FILE] [--log-level LEVEL] [--insecure] [--tls-cert F --tls-key F] [--metrics-addr HOST:PORT]
//	voiced token access --identity I [--agent A] [--ttl 15m]
//	voiced check-config FILE
//	voiced call [--config FILE] [--sip-addr HOST:PORT] [--from ID] [--agent A] [--trunk T] sip:user@host
//	voiced version
package main

import (
	"context"
	"crypto/tls"
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
	"strings"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/internal/assembly"
	"github.com/voiced-dev/voiced/internal/auth"
	"github.com/voiced-dev/voiced/internal/calltools"
	"github.com/voiced-dev/voiced/internal/cmem"
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
  voiced serve [--addr HOST:PORT] [--sip-addr HOST:PORT] [--sip-tls-addr HOST:PORT] [--config FILE] [--log-level debug|info|warn|error]
               [--insecure] [--tls-cert FILE --tls-key FILE] [--metrics-addr HOST:PORT]
  voiced check-config FILE
  voiced call [--config FILE] [--sip-addr HOST:PORT] [--from ID] [--agent A] [--trunk T] sip:user@host
      (dial out through the configured trunk; prints the call's events as JSON lines)
  voiced bench [--quick] [--out DIR]
  voiced bench soak [--sessions N] [--duration D] [--out DIR]
  voiced token access --identity I [--agent A] [--ttl 15m] [--config FILE]
      (an access token for /ws and /webrtc/offer, signed with $VOICED_TOKEN_SECRET)
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
		if err := errors.Join(assembly.Check(cfg), assembly.CheckTools(cfg, calltools.Names(cfg.SIP.TransferTargets)...)); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		if _, err := server.NewGuard(cfg.Server.Auth, os.Getenv); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		if err := server.CheckWebRTC(cfg, os.Getenv); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		if a, _, err := server.SIPOptions(cfg.SIP, os.Getenv); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		} else if err := a.Validate(); err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		fmt.Fprintln(stdout, args[1]+": ok")
		return nil
	case "bench":
		return benchCommand(args[1:], stdout, stderr)
	case "token":
		if len(args) > 1 && args[1] == "access" {
			return accessTokenCmd(args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "livekit" {
			args = args[1:]
		}
		return tokenCmd(args[1:], stdout, stderr)
	case "call":
		return callCmd(args[1:], stdout, stderr)
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

// accessTokenCmd prints an access token for this server's own endpoints,
// signed with the secret in the variable [server.auth] token_secret_env
// names (VOICED_TOKEN_SECRET).
func accessTokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token access", flag.ContinueOnError)
	fs.SetOutput(stderr)
	identity := fs.String("identity", "", "who the token is for: its sub claim (required)")
	agent := fs.String("agent", "", "the agent the session may use (default: any)")
	ttl := fs.Duration("ttl", 15*time.Minute, "validity (at most 24h)")
	cfgPath := fs.String("config", "", "configuration file, for [server.auth] (default: built-in)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token access: unexpected arguments %q", fs.Args())
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *identity == "" {
		return errors.New("token access: --identity is required")
	}
	env := cfg.Server.Auth.TokenSecretEnv
	secret := os.Getenv(env)
	if secret == "" {
		return fmt.Errorf("token access: $%s is empty: set it to the secret the server verifies tokens with", env)
	}
	tok, err := auth.Mint(auth.TokenConfig{Secret: []byte(secret), Identity: *identity, Agent: *agent, TTL: *ttl, Audience: cfg.Server.Auth.Audience})
	if err != nil {
		return fmt.Errorf("token access: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
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
	addr := fs.String("addr", "", "listen address (default from config, "+config.DefaultAddr+")")
	sipAddr := fs.String("sip-addr", "", "SIP listen address, UDP and TCP (default from config [sip] listen; none)")
	cfgPath := fs.String("config", "", "configuration file (default: built-in demo)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	insecure := fs.Bool("insecure", false, "serve a non-loopback address without authentication")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM): serve HTTPS and WSS; reloaded on SIGHUP")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	sipTLSAddr := fs.String("sip-tls-addr", "", "also answer SIP over TLS on HOST:PORT (usually 5061; the certificate of [sip] tls_cert, else --tls-cert)")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics on this (private) address instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	// Native memory (recognizer models, ONNX Runtime, flite) freed after
	// a burst of sessions goes back to the system.
	cmem.Tune()

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
	if *sipTLSAddr != "" {
		cfg.SIP.TLSListen = *sipTLSAddr
	}
	if *tlsCert != "" || *tlsKey != "" {
		cfg.Server.TLSCert, cfg.Server.TLSKey = *tlsCert, *tlsKey
	}
	if *metricsAddr != "" {
		cfg.Server.MetricsAddr = *metricsAddr
	}
	if (cfg.Server.TLSCert == "") != (cfg.Server.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key: give both or neither")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srvx := server.New(cfg, log)
	if err := exposed(cfg.Server.Addr, srvx.AuthEnabled(), *insecure); err != nil {
		return err
	}
	if !srvx.AuthEnabled() && !loopback(cfg.Server.Addr) {
		log.Warn("serving without authentication (--insecure): anyone who can reach this address can open sessions", "addr", cfg.Server.Addr)
	}
	var cert *certificate
	if cfg.Server.TLSCert != "" {
		var err error
		if cert, err = loadCertificate(cfg.Server.TLSCert, cfg.Server.TLSKey); err != nil {
			return err
		}
	}
	var sipCert *certificate
	if cfg.SIP.Listen != "" {
		var err error
		if sipCert, err = sipCertificate(cfg.SIP.TLSCert, cfg.SIP.TLSKey, cfg.Server.TLSCert, cfg.Server.TLSKey, cfg.SIP.TLSListen); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return err
	}
	srv := srvx.HTTPServer()
	scheme := "http"
	if cert != nil {
		srv.TLSConfig = cert.config()
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	if cert != nil || sipCert != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				for _, c := range []*certificate{cert, sipCert} {
					if c == nil {
						continue
					}
					if err := c.reload(); err != nil {
						log.Error("certificate not reloaded; serving the previous one", "cert", c.certFile, "err", err)
						continue
					}
					log.Info("certificate reloaded", "cert", c.certFile)
				}
			}
		}()
	}
	srvErr := make(chan error, 2)
	go func() { srvErr <- srv.Serve(ln) }()
	var msrv *http.Server
	if cfg.Server.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.Server.MetricsAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("metrics_addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srvx.MetricsHandler())
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: time.Minute}
		go func() { srvErr <- msrv.Serve(mln) }()
		log.Info("metrics", "addr", mln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString(), "auth", srvx.AuthEnabled(), "tls", cert != nil)
	if err := srvx.Load(); err != nil {
		srv.Close()
		if msrv != nil {
			msrv.Close()
		}
		return err
	}
	defer srvx.Close()
	if cfg.SIP.Listen != "" {
		var sipTLS *tls.Config
		if sipCert != nil {
			sipTLS = sipCert.sipConfig()
		}
		if err := srvx.ListenSIP(ctx, cfg.SIP.Listen, sipTLS); err != nil {
			srv.Close()
			if msrv != nil {
				msrv.Close()
			}
			return err
		}
		if cfg.SIP.TLSListen != "" {
			log.Info("SIP ready", "uri", "sip:demo@"+cfg.SIP.Listen, "tls_uri", "sip:demo@"+cfg.SIP.TLSListen+";transport=tls")
		} else {
			log.Info("SIP ready", "uri", "sip:demo@"+cfg.SIP.Listen)
		}
	}
	log.Info("ready", "url", scheme+"://"+displayAddr(ln.Addr()))

	select {
	case err := <-srvErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.Server.ShutdownGrace)
	// Sessions get the grace to finish their answers and say goodbye,
	// then a little more to close.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace+5*time.Second)
	defer cancel()
	srvx.Shutdown(sctx)
	if msrv != nil {
		msrv.Shutdown(sctx)
	}
	return srv.Shutdown(sctx)
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errExposed refuses to serve the internet without authentication.
var errExposed = errors.New("refusing to serve without authentication")

// exposed refuses a non-loopback address (":8080" listens on every
// interface) when authentication is off, unless insecure.
func exposed(addr string, authOn, insecure bool) error {
	if authOn || insecure || loopback(addr) {
		return nil
	}
	return fmt.Errorf("%w on %s: anyone who can reach it could open sessions that spend your model and speech credits. "+
		"Set VOICED_API_KEY (or VOICED_TOKEN_SECRET for access tokens; see docs/security.md), "+
		"listen on loopback (--addr 127.0.0.1:8080), or pass --insecure if something in front of voiced authenticates", errExposed, addr)
}

func displayAddr(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if ok && (t.IP == nil || t.IP.IsUnspecified()) {
		return fmt.Sprintf("localhost:%d", t.Port)
	}
	return a.String()
}
