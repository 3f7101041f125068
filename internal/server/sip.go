package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/sip"
)

// ListenSIP answers SIP calls on addr (host:port, UDP and TCP) with the
// loaded agents, until Shutdown or ctx ends, and on [sip] tls_listen over
// TLS with tlsConf (required then). Call it after Load. Routes in [sip]
// choose the entry agent by the dialed user part.
func (s *Server) ListenSIP(ctx context.Context, addr string, tlsConf *tls.Config) error {
	if s.builder == nil {
		return errors.New("server: ListenSIP before Load")
	}
	cfg := s.cfg.SIP
	entry := func(agent string) transport.Factory {
		b := *s.builder
		if agent != "" {
			b.Entry = agent
		}
		return b.Run
	}
	routes := map[string]transport.Factory{}
	for user, agent := range cfg.Routes {
		if !slices.ContainsFunc(s.builder.Agents, func(a agents.Runnable) bool { return a.Name() == agent }) {
			return fmt.Errorf("server: sip.routes.%s: no agent %q", user, agent)
		}
		routes[user] = entry(agent)
	}
	auth, trunks, err := SIPOptions(cfg, os.Getenv)
	if err != nil {
		return err
	}
	srv, err := sip.NewServer(sip.Config{
		Auth:         auth,
		Trunks:       trunks,
		ExternalIP:   cfg.ExternalIP,
		RTPPortMin:   cfg.RTPPortMin,
		RTPPortMax:   cfg.RTPPortMax,
		MediaTimeout: time.Duration(cfg.MediaTimeout),
		Admission:    s.adm,
		Routes:       routes,
		TLS:          tlsConf,
		Logger:       s.log,
	}, entry(""))
	if err != nil {
		return err
	}
	listen := [][2]string{{"udp", addr}, {"tcp", addr}}
	if cfg.TLSListen != "" {
		if tlsConf == nil {
			srv.Shutdown(ctx)
			return fmt.Errorf("server: sip.tls_listen %q: no certificate", cfg.TLSListen)
		}
		listen = append(listen, [2]string{"tls", cfg.TLSListen})
	}
	for _, l := range listen {
		if _, err := srv.Listen(ctx, l[0], l[1]); err != nil {
			srv.Shutdown(ctx)
			return fmt.Errorf("server: SIP: %w", err)
		}
	}
	for _, r := range cfg.Registrations {
		reg := sip.Registration{Registrar: r.Registrar, Transport: r.Transport, User: r.User,
			Domain: r.Domain, Username: r.Username, Expires: r.Expires}
		if r.PasswordEnv != "" {
			reg.Password = os.Getenv(r.PasswordEnv)
		}
		if err := srv.Register(ctx, reg); err != nil {
			srv.Shutdown(ctx)
			return fmt.Errorf("server: SIP: %w", err)
		}
	}
	s.sip.Store(srv)
	return nil
}

// SIPOptions reads [sip.auth] and the trunks of [sip], and checks the
// registrations' passwords, taking passwords
// from the variables they name (getenv is os.Getenv outside tests). A
// named variable that is empty is an error. check-config runs it too.
func SIPOptions(cfg config.SIP, getenv func(string) string) (sip.Auth, []sip.Trunk, error) {
	a := cfg.Auth
	allow, err := sip.ParsePrefixes(a.Allow)
	if err != nil {
		return sip.Auth{}, nil, fmt.Errorf("sip.auth: %w", err)
	}
	auth := sip.Auth{Allow: allow, Realm: a.Realm, Algorithms: a.Algorithms, NonceTTL: a.NonceTTL, Proxy: a.Proxy}
	if len(a.Users) > 0 {
		auth.Users = map[string]string{}
	}
	var errs []error
	for _, u := range a.Users {
		pass := getenv(u.PasswordEnv)
		if pass == "" {
			errs = append(errs, fmt.Errorf("sip.auth.users %q: $%s is empty", u.Username, u.PasswordEnv))
		}
		auth.Users[u.Username] = pass
	}
	list := cfg.Trunks
	if cfg.Trunk != nil {
		list = append([]config.SIPTrunk{*cfg.Trunk}, list...)
	}
	var trunks []sip.Trunk
	for _, t := range list {
		name := t.Name
		if name == "" {
			name = "default"
		}
		tr := sip.Trunk{Name: name, Address: t.Address, Transport: t.Transport, Username: t.Username, From: t.From}
		if t.PasswordEnv != "" {
			if tr.Password = getenv(t.PasswordEnv); tr.Password == "" {
				errs = append(errs, fmt.Errorf("sip.trunk %q: $%s is empty", name, t.PasswordEnv))
			}
		}
		trunks = append(trunks, tr)
	}
	for _, r := range cfg.Registrations {
		if r.PasswordEnv != "" && getenv(r.PasswordEnv) == "" {
			errs = append(errs, fmt.Errorf("sip.registrations %q: $%s is empty", r.User, r.PasswordEnv))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return sip.Auth{}, nil, err
	}
	return auth, trunks, nil
}
