package gateway

import (
	"net/http"

	"github.com/voicegate/voicegate/internal/config"
)

// routes lists every endpoint voicegate serves on its public listener: each
// webhook source at its path (POST), health, readiness, and the optional
// metrics and dev tool. The
// admin listener (internal/server) serves /metrics and pprof.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	for _, src := range g.sources {
		mux.Handle("POST "+src.Path(), g.handleSource(src))
		mux.Handle(src.Path(), methodNotAllowed("POST"))
	}
	mux.HandleFunc("GET /healthz", g.handleHealthz)
	mux.HandleFunc("GET /readyz", g.handleReadyz)
	if tok := g.cfg.Admin.PublicMetricsToken; tok != "" {
		// Off by default: metrics are served on the admin listener.
		mux.Handle("GET /metrics", requireBearer(tok, g.metrics.Handler()))
	}
	if g.devTool != nil {
		mux.Handle("POST "+config.DevToolPath, g.devTool) // serve --dev only: the demo internal API
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return g.recoverer(mux)
}
