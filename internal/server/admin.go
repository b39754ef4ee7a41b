package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/voicegate/voicegate/internal/allowlist"
)

// AdminHandler serves metrics (when given) and Go's profiler. It is mounted only on the admin
// listener, never on the public one.
func AdminHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Admin is the operator listener (metrics, pprof), bound but not yet
// serving.
type Admin struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// ListenAdmin binds addr for the admin handler (see AdminHandler), served
// only to the addresses allow allows (nil: any) — the connection's own
// address: no proxy header is believed on the admin listener.
func ListenAdmin(addr string, allow *allowlist.List, metrics http.Handler, log *slog.Logger) (*Admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	h := AdminHandler(metrics)
	if allow != nil {
		h = allowOnly(allow, h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		// Profiles run for up to ?seconds=N; allow a long write.
		WriteTimeout: 5 * time.Minute}
	return &Admin{srv: srv, ln: ln, log: log}, nil
}

// allowOnly answers 403 to a connection from outside allow.
func allowOnly(allow *allowlist.List, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !allow.Allows(ap.Addr()) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Addr returns the bound address.
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// Serve serves until ctx ends, then closes the listener and its
// connections, and returns when the server has stopped.
func (a *Admin) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin listener: %w", err)
	case <-ctx.Done():
	}
	a.srv.Close()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return nil
}
