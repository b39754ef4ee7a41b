package gateway

import (
	"net/http"
)

// routes lists every endpoint voicegate serves on its public listener: each
// webhook source at its path (POST), health, readiness, and the optional
// metrics and extra routes (serve --dev's demo internal API). The
// admin listener (internal/server) serves /metrics and pprof.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	for _, src := range g.sources {
		mux.Handle("POST "+src.Path(), g.handleSource(src))
		mux.Handle(src.Path(), methodNotAllowed("POST"))
	}
	mux.HandleFunc("GET /healthz", g.handleHealthz)
	mux.HandleFunc("GET /readyz", g.handleReadyz)
	if tok := g.cfg.PublicMetricsToken; tok != "" {
		// Off by default: metrics are served on the admin listener.
		mux.Handle("GET /metrics", requireBearer(tok, g.metrics.Handler()))
	}
	for pattern, h := range g.extra {
		mux.Handle(pattern, h) // serve --dev: the demo internal API
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return g.recoverer(mux)
}
