package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/sip"
)

// ListenSIP answers SIP calls on addr (host:port, UDP and TCP) with the
// loaded agents, until Shutdown or ctx ends. Call it after Load. Routes in
// [sip] choose the entry agent by the dialed user part.
func (s *Server) ListenSIP(ctx context.Context, addr string) error {
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
	srv, err := sip.NewServer(sip.Config{
		ExternalIP:   cfg.ExternalIP,
		RTPPortMin:   cfg.RTPPortMin,
		RTPPortMax:   cfg.RTPPortMax,
		MediaTimeout: time.Duration(cfg.MediaTimeout),
		Admission:    s.adm,
		Routes:       routes,
		Logger:       s.log,
	}, entry(""))
	if err != nil {
		return err
	}
	for _, network := range []string{"udp", "tcp"} {
		if _, err := srv.Listen(ctx, network, addr); err != nil {
			srv.Shutdown(ctx)
			return fmt.Errorf("server: SIP: %w", err)
		}
	}
	s.sip.Store(srv)
	return nil
}
