// Package server provides the HTTP listener around voicegate's handler: every
// http.Server timeout set, optional TLS (1.2 minimum) with certificates
// reloaded from disk without a restart, and a bounded graceful drain.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
)

// Server is a listening HTTP server.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	certs *CertReloader
	log   *slog.Logger
	drain time.Duration

	// Connections taken over by their handler (WebSockets), which
	// http.Server.Shutdown neither signals nor waits for.
	hijacked      sync.WaitGroup
	hijackCtx     context.Context
	closeHijacked context.CancelFunc
}

// Listen binds the configured address synchronously, so the caller knows the
// real address (for ":0") before serving.
func Listen(addr string, sc Config, tc TLSConfig, log *slog.Logger) (*Server, error) {
	s := &Server{log: log, drain: sc.DrainTimeout.D(), srv: &http.Server{
		ReadHeaderTimeout: sc.ReadHeaderTimeout.D(),
		ReadTimeout:       sc.ReadTimeout.D(),
		WriteTimeout:      sc.WriteTimeout.D(),
		IdleTimeout:       sc.IdleTimeout.D(),
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: sc.MaxConcurrentStreams},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if tc.Enabled() {
		cr, err := NewCertReloader(tc.CertFile, tc.KeyFile, log)
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.certs = cr
		min := uint16(tls.VersionTLS12)
		if tc.MinVersion == "1.3" {
			min = tls.VersionTLS13
		}
		s.srv.TLSConfig = &tls.Config{MinVersion: min, GetCertificate: cr.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	s.ln = ln
	s.hijackCtx, s.closeHijacked = context.WithCancel(context.Background())
	return s, nil
}

// Hijacked registers a connection its handler is about to take over (a
// WebSocket). Call it before http.Hijacker.Hijack or the upgrade: from the
// hijack on, Shutdown no longer sees the connection, so registering later
// could miss a drain that has already started. ctx ends when the drain
// starts: the handler should then finish, close the connection, and call
// done. The drain waits for every registered connection, within the drain
// timeout.
func (s *Server) Hijacked() (ctx context.Context, done func()) {
	s.hijacked.Add(1)
	var once sync.Once
	return s.hijackCtx, func() { once.Do(s.hijacked.Done) }
}

// Close releases the listener of a server that will not be served.
func (s *Server) Close() error { return s.ln.Close() }

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves h until ctx ends, then stops accepting and drains in-flight
// requests for at most the drain timeout. beforeDrain runs first (to fail
// readiness). It returns nil on a clean drain.
func (s *Server) Serve(ctx context.Context, h http.Handler, reloadEvery time.Duration, beforeDrain func()) error {
	s.srv.Handler = h
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	// The certificate watcher stops, and is waited for, before Serve
	// returns, whichever way it returns.
	wctx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	defer func() { stopWatch(); watch.Wait() }()
	if s.certs != nil {
		watch.Go(func() { s.certs.Watch(wctx, reloadEvery) })
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if beforeDrain != nil {
		beforeDrain()
	}
	s.log.Info("draining", logkey.TimeoutMS, s.drain.Milliseconds())
	dctx, cancel := context.WithTimeout(context.Background(), s.drain)
	defer cancel()
	s.closeHijacked() // taken-over connections are told to finish too
	if err := s.srv.Shutdown(dctx); err != nil {
		s.srv.Close()
		<-errc
		return fmt.Errorf("drain did not finish within %s: %w", s.drain, err)
	}
	hijackedDone := make(chan struct{})
	go func() { s.hijacked.Wait(); close(hijackedDone) }()
	select {
	case <-hijackedDone:
	case <-dctx.Done():
		<-errc
		return fmt.Errorf("drain did not finish within %s: connections taken over by their handler are still open", s.drain)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// CertReloader serves the newest valid certificate pair from disk. A pair
// that fails to load is logged and the previous one kept.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	mu                sync.RWMutex
	cert              *tls.Certificate
	modCert, modKey   time.Time
}

// NewCertReloader loads the pair once; an unreadable pair is an error.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// Reload reads the pair if either file changed; it reports whether it did.
func (c *CertReloader) Reload() (bool, error) {
	ci, err := os.Stat(c.certFile)
	if err != nil {
		return false, fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(c.keyFile)
	if err != nil {
		return false, fmt.Errorf("tls key: %w", err)
	}
	c.mu.RLock()
	same := c.cert != nil && ci.ModTime().Equal(c.modCert) && ki.ModTime().Equal(c.modKey)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("load tls key pair: %w", err)
	}
	c.mu.Lock()
	c.cert, c.modCert, c.modKey = &pair, ci.ModTime(), ki.ModTime()
	c.mu.Unlock()
	return true, nil
}

// Watch reloads every interval until ctx ends.
func (c *CertReloader) Watch(ctx context.Context, every time.Duration) {
	periodic.Run(ctx, every, func() {
		changed, err := c.Reload()
		if err != nil {
			c.log.Error("tls reload failed; keeping the previous certificate", logkey.Err, err)
		} else if changed {
			c.log.Info("tls certificate reloaded")
		}
	})
}
