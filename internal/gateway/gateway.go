// Package gateway provides voicegate's HTTP layer: the Vapi webhook handler
// (read with a size cap, authenticate, refuse replays, decode, dispatch),
// health and readiness, metrics, and the middleware around them.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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

const devToolPath = config.DevToolPath

// Gateway is the public HTTP handler.
type Gateway struct {
	cfg        *config.Config
	verifier   auth.Verifier
	replay     *replay.Cache
	dispatcher *dispatch.Dispatcher
	store      calls.Store
	metrics    *metrics.Metrics
	log        *slog.Logger
	now        func() time.Time
	devTool    http.Handler
	draining   atomic.Bool
	handler    http.Handler
	bufs       sync.Pool
}

// Deps are the Gateway's collaborators.
type Deps struct {
	Verifier   auth.Verifier
	Replay     *replay.Cache
	Dispatcher *dispatch.Dispatcher
	Store      calls.Store
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	Now        func() time.Time
	// DevTool, if set, is mounted at config.DevToolPath (serve --dev).
	DevTool http.Handler
}

// New returns the gateway for a validated configuration.
func New(cfg *config.Config, d Deps) *Gateway {
	g := &Gateway{cfg: cfg, verifier: d.Verifier, replay: d.Replay, dispatcher: d.Dispatcher, store: d.Store,
		metrics: d.Metrics, log: d.Log, now: d.Now, devTool: d.DevTool}
	g.bufs.New = func() any { return new(bytes.Buffer) }
	g.handler = g.routes()
	return g
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// SetDraining marks the gateway as shutting down: /readyz fails from now on.
func (g *Gateway) SetDraining() { g.draining.Store(true) }

func (g *Gateway) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

func (g *Gateway) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := g.store.Ping(ctx); err != nil {
		g.log.Error("readiness: database unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"database unreachable"}`))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
}

// handleVapi is the server-URL endpoint. Order matters: size cap, then
// authentication on the raw bytes, then replay check, then JSON decoding.
func (g *Gateway) handleVapi() http.Handler {
	maxBytes := g.cfg.Vapi.MaxBodyBytes
	warnRatio := g.cfg.Vapi.DeadlineWarnRatio
	serverTimeout := g.cfg.Vapi.ServerTimeout.D()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.now()
		mtype := "none"
		outcome := metrics.OutcomeOK
		defer func() {
			g.metrics.Requests.WithLabelValues(mtype, outcome).Inc()
			g.metrics.Latency.WithLabelValues(mtype).Observe(g.now().Sub(start).Seconds())
		}()

		buf := g.bufs.Get().(*bytes.Buffer)
		buf.Reset()
		defer func() {
			if buf.Cap() <= 256<<10 {
				g.bufs.Put(buf)
			}
		}()
		if err := readBody(w, r, buf, maxBytes); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				outcome = metrics.OutcomeTooLarge
				writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			outcome = metrics.OutcomeBadRequest
			writeError(w, http.StatusBadRequest, "could not read request body")
			return
		}
		body := buf.Bytes()

		areq := auth.Request{Method: r.Method, URL: g.signedURL(r), Header: r.Header, Body: body}
		if err := g.verifier.Verify(&areq, start); err != nil {
			reason := auth.ReasonOf(err)
			outcome = metrics.OutcomeUnauthorized
			g.metrics.AuthFailures.WithLabelValues(string(reason)).Inc()
			g.log.Warn("authentication failed", "reason", string(reason), "remote", r.RemoteAddr)
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}

		resp, replayed, finish, err := g.replay.Begin(r.Context(), replay.KeyOf(body))
		if err != nil {
			outcome = metrics.OutcomeError
			writeError(w, http.StatusServiceUnavailable, "request already in progress")
			return
		}
		if replayed {
			outcome = metrics.OutcomeReplay
			g.log.Info("replayed request answered from cache", "status", resp.Status)
			writeJSON(w, resp.Status, resp.Body)
			return
		}
		remember := false
		defer func() { finish(resp, remember) }()

		msg, err := vapi.Decode(body)
		if err != nil {
			outcome = metrics.OutcomeBadRequest
			resp = replay.Response{Status: http.StatusBadRequest, Body: errorBody(err.Error())}
			remember = true
			writeJSON(w, resp.Status, resp.Body)
			return
		}
		mtype = vapi.MetricType(msg.Type)
		deadline := dispatch.Deadline(msg.Type, serverTimeout)
		ctx, cancel := context.WithTimeout(r.Context(), deadline)
		out := g.dispatcher.Handle(ctx, msg)
		cancel()
		resp = replay.Response{Status: out.Status, Body: out.Body}
		remember = out.Status < 500
		if out.Status >= 500 {
			outcome = metrics.OutcomeError
		}
		writeJSON(w, out.Status, out.Body)

		took := g.now().Sub(start)
		if took > time.Duration(float64(deadline)*warnRatio) {
			g.metrics.DeadlineWarnings.WithLabelValues(mtype).Inc()
			g.log.Warn("slow webhook answer", "type", mtype, "call_id", msg.CallID(), "duration_ms", ms(took), "deadline_ms", ms(deadline))
		}
		if g.log.Enabled(r.Context(), slog.LevelDebug) {
			g.log.Debug("handled", "type", mtype, "call_id", msg.CallID(), "status", out.Status, "duration_ms", ms(took))
		}
	})
}

// signedURL is the URL the sender signed, for HMAC {url}: the configured
// public URL (a proxy may rewrite scheme, host or port), else the request's.
func (g *Gateway) signedURL(r *http.Request) string {
	if u := g.cfg.Vapi.PublicURL; u != "" {
		if r.URL.RawQuery != "" {
			return u + "?" + r.URL.RawQuery
		}
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// readBody reads at most max bytes; more is a *http.MaxBytesError.
func readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, max int64) error {
	if r.ContentLength > max {
		return &http.MaxBytesError{Limit: max}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

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
	b, _ := jsonMarshalString(msg)
	return append(append([]byte(`{"error":`), b...), '}')
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody(msg))
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
