// Package gateway provides voicegate's HTTP layer: the Vapi webhook handler
// (read with a size cap, authenticate, refuse replays, decode, dispatch),
// health and readiness, metrics, and the middleware around them.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Gateway is the public HTTP handler.
type Gateway struct {
	cfg *config.Config // as started: routes and limits that need a restart
	// live is what a configuration reload (SIGHUP) swaps atomically; each
	// request reads it once, so it runs entirely on one configuration.
	live     atomic.Pointer[Live]
	replay   replay.Guard
	store    calls.Store
	metrics  *metrics.Metrics
	log      *slog.Logger
	now      func() time.Time
	devTool  http.Handler
	draining atomic.Bool
	handler  http.Handler
	bodies   *bodyReader
	authLog  *authLog
}

// Deps are the Gateway's collaborators.
type Deps struct {
	Verifier   auth.Verifier
	Replay     replay.Guard
	Dispatcher *dispatch.Dispatcher
	Store      calls.Store
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	Now        func() time.Time
	// DevTool, if set, is mounted at config.DevToolPath (serve --dev).
	DevTool http.Handler
}

// Live is the part of the gateway a configuration reload replaces.
type Live struct {
	Config     *config.Config
	Verifier   auth.Verifier
	Dispatcher *dispatch.Dispatcher
}

// New returns the gateway for a validated configuration.
func New(cfg *config.Config, d Deps) *Gateway {
	g := &Gateway{cfg: cfg, replay: d.Replay, store: d.Store,
		metrics: d.Metrics, log: d.Log, now: d.Now, devTool: d.DevTool}
	g.live.Store(&Live{Config: cfg, Verifier: d.Verifier, Dispatcher: d.Dispatcher})
	g.bodies = newBodyReader(cfg.Server.BodyMemoryBytes)
	g.authLog = newAuthLog(d.Log, AuthLogInterval, d.Now)
	g.handler = g.routes()
	return g
}

// AuthLogInterval is how often aggregated authentication failures are logged.
const AuthLogInterval = time.Minute

// Run does the gateway's background work (closing each interval of the
// authentication-failure log) until ctx ends.
func (g *Gateway) Run(ctx context.Context) { g.authLog.run(ctx) }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// Swap makes l the configuration of every request that starts from now on;
// requests in flight finish on the one they started with.
func (g *Gateway) Swap(l *Live) { g.live.Store(l) }

// Live returns the current live configuration.
func (g *Gateway) Live() *Live { return g.live.Load() }

// SetDraining marks the gateway as shutting down: /readyz fails from now on.
func (g *Gateway) SetDraining() { g.draining.Store(true) }

func (g *Gateway) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// closeConn asks to close an HTTP/1 connection whose body was not read to
// the end. HTTP/2 resets just the stream; "Connection: close" there would
// shut down the whole shared connection.
func closeConn(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// readier is a store that knows whether its recent writes failed
// (calls.MonitoredStore).
type readier interface {
	Ready(ctx context.Context) error
}

func (g *Gateway) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := g.store.Ping
	if rd, ok := g.store.(readier); ok {
		check = rd.Ready
	}
	if err := check(ctx); errors.Is(err, calls.ErrWritesFailing) {
		g.log.Error("readiness: database writes failing", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"database writes failing"}`))
		return
	} else if err != nil {
		g.log.Error("readiness: database unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"database unreachable"}`))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
}

// handleVapi is the server-URL endpoint. Order matters: size cap, then
// authentication on the raw bytes, then replay check, then JSON decoding.
func (g *Gateway) handleVapi() http.Handler {
	byType := make(map[string]*metrics.TypeMetrics, len(vapi.KnownTypes)+2)
	for _, t := range append(vapi.KnownTypes, "unknown", "none") {
		byType[t] = g.metrics.ForType(t)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.now()
		mtype, outcome := g.serveVapi(w, r, start)
		byType[mtype].Observe(outcome, g.now().Sub(start))
	})
}

// serveVapi handles one webhook and returns its metric labels.
func (g *Gateway) serveVapi(w http.ResponseWriter, r *http.Request, start time.Time) (mtype, outcome string) {
	mtype = "none"
	live := g.live.Load()
	vc := &live.Config.Vapi
	var b body
	defer g.bodies.release(&b)
	// Deadlines are on the real clock, whatever g.now says.
	pace := pacer{w: w, now: time.Now, limit: time.Now().Add(g.cfg.Server.ReadTimeout.D())}
	if err := g.bodies.read(r, vc.MaxBodyBytes, &b, &pace); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return mtype, metrics.OutcomeTooLarge
		case errors.Is(err, errOverBudget):
			w.Header().Set("Retry-After", "1")
			closeConn(w, r)
			writeError(w, http.StatusServiceUnavailable, "server busy, retry")
			return mtype, metrics.OutcomeOverloaded
		case errors.Is(err, os.ErrDeadlineExceeded):
			closeConn(w, r)
			writeError(w, http.StatusRequestTimeout, "request body too slow")
			return mtype, metrics.OutcomeBadRequest
		}
		writeError(w, http.StatusBadRequest, "could not read request body")
		return mtype, metrics.OutcomeBadRequest
	}
	body := b.b

	areq := auth.Request{Method: r.Method, Header: r.Header, Body: body, PublicURL: vc.PublicURL, HTTP: r}
	if err := live.Verifier.Verify(&areq, start); err != nil {
		reason := auth.ReasonOf(err)
		g.metrics.AuthFailures.WithLabelValues(string(reason)).Inc()
		g.authLog.failed(r.RemoteAddr, reason)
		writeError(w, http.StatusUnauthorized, "unauthorized")
		return mtype, metrics.OutcomeUnauthorized
	}

	cached, replayed, ticket, err := g.replay.BeginAt(r.Context(), replay.KeyOf(body), start, areq.ValidUntil)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "request already in progress")
		return mtype, metrics.OutcomeError
	}
	if replayed {
		g.log.Info("replayed request answered from cache", "status", cached.Status)
		writeJSON(w, cached.Status, cached.Body)
		return mtype, metrics.OutcomeReplay
	}
	// Released on every path, a panic included; a no-op once Finish ran.
	defer g.replay.Finish(ticket, replay.Response{}, false)

	msg, err := vapi.Decode(body)
	if err != nil {
		resp := replay.Response{Status: http.StatusBadRequest, Body: errorBody(err.Error())}
		g.replay.Finish(ticket, resp, true)
		writeJSON(w, resp.Status, resp.Body)
		return mtype, metrics.OutcomeBadRequest
	}
	mtype = vapi.MetricType(msg.Type)
	out := live.Dispatcher.Handle(r.Context(), msg)
	// An answer computed after the client went away (its context cancelled)
	// may be a failure caused by the cancellation: never store it, so that
	// the next identical request does the work.
	g.replay.Finish(ticket, replay.Response{Status: out.Status, Body: out.Body}, out.Status < 500 && r.Context().Err() == nil)
	writeJSON(w, out.Status, out.Body)
	outcome = metrics.OutcomeOK
	if out.Status >= 500 {
		outcome = metrics.OutcomeError
	}

	took := g.now().Sub(start)
	deadline := dispatch.Deadline(msg.Type, vc.ServerTimeout.D())
	if took > time.Duration(float64(deadline)*vc.DeadlineWarnRatio) {
		g.metrics.DeadlineWarnings.WithLabelValues(mtype).Inc()
		g.log.Warn("slow webhook answer", "type", mtype, "call_id", msg.CallID(), "duration_ms", ms(took), "deadline_ms", ms(deadline))
	}
	if g.log.Enabled(r.Context(), slog.LevelDebug) {
		g.log.Debug("handled", "type", mtype, "call_id", msg.CallID(), "status", out.Status, "duration_ms", ms(took))
	}
	return mtype, outcome
}

// BodiesInFlight returns how many requests are reading or holding a body.
func (g *Gateway) BodiesInFlight() int64 { return g.bodies.inFlight.Load() }

// BodyBytesHeld returns the bytes of body buffers held by requests in flight.
func (g *Gateway) BodyBytesHeld() int64 { return g.bodies.held.Load() }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

var jsonContentType = []string{"application/json"}

func errorBody(msg string) []byte {
	b, _ := json.Marshal(msg)
	return append(append([]byte(`{"error":`), b...), '}')
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody(msg))
}

// requireBearer serves next only to requests carrying "Authorization:
// Bearer <token>" (compared in constant time, as digests); others get 401.
func requireBearer(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
}

// recoverer turns a panic into a 500 without leaking its detail.
func (g *Gateway) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.log.Error("panic in handler", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
