// Package gateway provides voicegate's HTTP layer for any webhook source
// (internal/webhook): read the body under a budget, authenticate the raw
// bytes, refuse replays, then hand the body to its source; plus health,
// readiness, optional public metrics, and the middleware around them.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/health"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/periodic"
	"github.com/voicegate/voicegate/internal/ratelimit"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/state"
	"github.com/voicegate/voicegate/internal/tracing"
	"github.com/voicegate/voicegate/internal/webhook"
)

// Gateway is the public HTTP handler: it serves a list of webhook sources
// (internal/webhook), health and readiness, and knows nothing
// provider-specific.
type Gateway struct {
	cfg      Config
	sources  []webhook.Source
	replay   replay.Guard
	store    calls.Store
	metrics  *metrics.Metrics
	log      *slog.Logger
	now      func() time.Time
	extra    map[string]http.Handler
	draining atomic.Bool
	inFlight atomic.Int64
	handler  http.Handler
	bodies   *bodyReader
	refusals *refusalLog
	// perSource limits each client address (nil: off).
	perSource *ratelimit.PerAddress
	// routeBuckets are the routes' buckets (ShareLimits).
	routeMu      sync.Mutex
	routeBuckets []*ratelimit.Bucket
	share        int // the replicas the limits are shared by (ShareLimits)
	// health decides readiness from the dependencies (nil: the store).
	health  *health.Monitor
	tracing *tracing.Provider // nil: off
}

// Deps are the Gateway's collaborators.
type Deps struct {
	// Sources are the webhook providers served, each at its path.
	Sources []webhook.Source
	Replay  replay.Guard
	Store   calls.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
	// Routes are extra endpoints, by pattern ("POST /dev/internal/x"):
	// the demo internal API of serve --dev.
	Routes map[string]http.Handler
	// Audit, if set, records security events (each minute's authentication
	// failures per reason and client) in the audit log.
	Audit func(event, subject, detail string)
	// Health, if set, decides readiness from the dependencies it watches
	// (internal/health); without it readiness is the store's.
	Health *health.Monitor
	// Tracing, if set, traces each webhook request (tracing.go).
	Tracing *tracing.Provider
}

// Config is what the gateway needs of the configuration; it changes only
// with a restart.
type Config struct {
	// BodyMemoryBytes bounds the memory of all request bodies in flight.
	BodyMemoryBytes int64
	// ReadTimeout is the server's read timeout, the latest a body may end.
	ReadTimeout time.Duration
	// PublicMetricsToken, when set, serves /metrics on this listener to
	// that bearer token.
	PublicMetricsToken string
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the caller (in logs, allowlists and rate limits).
	TrustedProxies []netip.Prefix
	// Limits are the rate limits and the in-flight cap, checked before a
	// body is read.
	Limits ratelimit.Config
}

// New returns the gateway.
func New(cfg Config, d Deps) *Gateway {
	g := &Gateway{cfg: cfg, sources: d.Sources, replay: d.Replay, store: d.Store,
		metrics: d.Metrics, log: d.Log, now: d.Now, extra: d.Routes, health: d.Health, tracing: d.Tracing}
	g.bodies = newBodyReader(cfg.BodyMemoryBytes)
	g.perSource = ratelimit.NewPerAddress(cfg.Limits.PerSource, cfg.Limits.MaxSources)
	g.refusals = newRefusalLog(d.Log, RefusalLogInterval, d.Now)
	if d.Audit != nil {
		g.refusals.onAuth = func(subject, detail string) { d.Audit("auth.failures", subject, detail) }
	}
	g.handler = g.routes()
	return g
}

// RefusalLogInterval is how often aggregated refusals (authentication
// failures included) are logged.
const RefusalLogInterval = time.Minute

// Run does the gateway's background work (closing each interval of the
// refusal log, forgetting the rate-limit buckets that are full again)
// until ctx ends.
func (g *Gateway) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { g.refusals.run(ctx) })
	if g.perSource != nil {
		wg.Go(func() { periodic.Run(ctx, SweepInterval, func() { g.perSource.Sweep(g.now()) }) })
	}
	wg.Wait()
}

// SweepInterval is how often the per-source buckets that are full again
// are forgotten (a full table also sweeps itself when it needs room).
const SweepInterval = time.Minute

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// FlushRefusals closes the refusal log's interval now (what its tick does
// each minute), for tests.
func (g *Gateway) FlushRefusals() { g.refusals.flush() }

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

// Ready reports whether the gateway should get traffic, and its status:
// "draining"; with Deps.Health, the health rule (internal/health: "ready",
// "degraded" while a shared dependency is down — still ready — or "not
// ready" while a local one is); without it, the store alone ("database
// writes failing", "database unreachable"). It is what /readyz answers
// and what voicegate_ready shows.
func (g *Gateway) Ready(ctx context.Context) (bool, string) {
	ok, status, _ := g.readiness(ctx)
	return ok, status
}

// readiness is Ready with the dependencies' states (nil without
// Deps.Health).
func (g *Gateway) readiness(ctx context.Context) (bool, string, []health.State) {
	if g.draining.Load() {
		return false, "draining", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if g.health != nil {
		r := g.health.Check(ctx) // logs the dependencies' changes itself
		return r.Ready, r.Status, r.Dependencies
	}
	check := g.store.Ping
	if rd, ok := g.store.(readier); ok {
		check = rd.Ready
	}
	if err := check(ctx); errors.Is(err, calls.ErrWritesFailing) {
		g.log.Error("readiness: database writes failing", logkey.Err, err)
		return false, "database writes failing", nil
	} else if err != nil {
		g.log.Error("readiness: database unreachable", logkey.Err, err)
		return false, "database unreachable", nil
	}
	return true, "ready", nil
}

// readyzBody is /readyz's answer: {"status": ..., "dependencies": [...]}.
type readyzBody struct {
	Status       string         `json:"status"`
	Dependencies []health.State `json:"dependencies,omitempty"`
}

func (g *Gateway) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ok, why, deps := g.readiness(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	b, _ := json.Marshal(readyzBody{Status: why, Dependencies: deps})
	writeJSON(w, status, b)
}

// served is one source as the gateway serves it.
type served struct {
	src webhook.Source
	// route is the route's own bucket (nil: no per-route limit).
	route  *ratelimit.Bucket
	byType map[string]*metrics.TypeMetrics
	none   *metrics.TypeMetrics
	// salt namespaces the source's replay keys: two sources never share
	// an entry, whatever their keys.
	salt replay.Key
}

// handleSource serves one webhook source. Order matters: size cap, then
// authentication on the raw bytes, then replay check, then the source's
// decoding and handling.
func (g *Gateway) handleSource(src webhook.Source) http.Handler {
	s := &served{src: src, byType: make(map[string]*metrics.TypeMetrics), salt: replay.KeyOf([]byte("voicegate source " + src.Name())),
		route: ratelimit.NewBucket(g.cfg.Limits.PerRoute)}
	g.routeMu.Lock()
	g.routeBuckets = append(g.routeBuckets, s.route)
	s.route.Share(g.share)
	g.routeMu.Unlock()
	for _, t := range src.Types() {
		s.byType[t] = g.metrics.ForType(src.Name(), t)
	}
	// Refusals (401, 413, 503, 408) and replays come before any message is
	// read: they are labelled "none", whatever the source's own types.
	s.none = s.byType["none"]
	if s.none == nil {
		s.none = g.metrics.ForType(src.Name(), "none")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight := g.inFlight.Add(1)
		defer g.inFlight.Add(-1)
		start := g.now()
		ep := src.Endpoint() // the request runs on one configuration
		r, span := g.startRequest(r, s)
		// A panic in the handler is answered by the adapter (handle); one
		// anywhere else on this path is answered here, in the source's
		// format, and counted like any failed request.
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.metrics.Panics.Inc()
				g.log.Error("panic in handler", logkey.Source, src.Name(), logkey.Path, r.URL.Path, logkey.Panic, v)
				s.none.Observe(metrics.OutcomeError, g.now().Sub(start))
				ct, b := encodeError(ep, http.StatusInternalServerError, "internal error")
				write(w, http.StatusInternalServerError, ct, b)
				panicked(span)
			}
		}()
		reply, outcome, err := webhook.Reply{}, "", g.admit(s, r, ep, inFlight, start)
		if err == nil {
			reply, outcome, err = g.serveSource(s, w, r, ep, start)
		}
		if err != nil {
			if err.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(err.retryAfter))
			}
			if err.closeConn {
				closeConn(w, r)
			}
			reply.Status = err.status
			reply.ContentType, reply.Body = encodeError(ep, err.status, err.msg)
			outcome = err.outcome
			client, peer := g.clientAddr(r)
			g.refusals.refused(err.kind, err.reason, client, peer)
		}
		for k, v := range reply.Header {
			w.Header()[k] = v
		}
		write(w, reply.Status, reply.ContentType, reply.Body)
		tm := s.byType[reply.Type]
		if tm == nil {
			tm = s.none
		}
		took := g.now().Sub(start)
		tm.Observe(outcome, took)
		endRequest(span, reply.Status, reply.Type, reply.CallID, outcome)
		if err == nil && outcome != metrics.OutcomeReplay {
			g.checkSlow(s, r, ep, reply, took)
		}
	})
}

// failure is a request the gateway refused before its source handled it:
// its status, message, outcome and log reason (a source's own errors go
// through sourceError).
type failure struct {
	status  int
	msg     string
	outcome string
	// kind and reason label the refusal's log line (aggregated).
	kind      *refusalKind
	reason    string
	closeConn bool // the body was not read to its end
	// retryAfter, when set, is the Retry-After header, in seconds.
	retryAfter int
}

// admit applies the source allowlist and the limits before anything is
// read: the client's address, its rate, the route's, then the cap on
// requests in flight (inFlight counts this one).
func (g *Gateway) admit(s *served, r *http.Request, ep *webhook.Endpoint, inFlight int64, now time.Time) *failure {
	if ep.AllowFrom == nil && g.perSource == nil {
		return g.admitRoute(s, inFlight, now)
	}
	client, _ := g.clientIP(r)
	if !ep.AllowFrom.Allows(client) {
		return &failure{status: http.StatusForbidden, msg: "forbidden", outcome: metrics.OutcomeForbidden,
			kind: kindRefusal, reason: "source_not_allowed", closeConn: true}
	}
	if g.perSource != nil && client.IsValid() {
		if ok, wait := g.perSource.Allow(client, now); !ok {
			return &failure{status: http.StatusTooManyRequests, msg: "too many requests from this address, retry later", outcome: metrics.OutcomeRateLimited,
				kind: kindRefusal, reason: "rate_limited_source", closeConn: true, retryAfter: ratelimit.RetryAfterSeconds(wait)}
		}
	}
	return g.admitRoute(s, inFlight, now)
}

// admitRoute applies the route's rate and the in-flight cap.
func (g *Gateway) admitRoute(s *served, inFlight int64, now time.Time) *failure {
	if ok, wait := s.route.Allow(now); !ok {
		return &failure{status: http.StatusTooManyRequests, msg: "too many requests, retry later", outcome: metrics.OutcomeRateLimited,
			kind: kindRefusal, reason: "rate_limited_route", closeConn: true, retryAfter: ratelimit.RetryAfterSeconds(wait)}
	}
	if max := g.cfg.Limits.MaxInFlight; max > 0 && inFlight > int64(max) {
		return &failure{status: http.StatusServiceUnavailable, msg: "server busy, retry", outcome: metrics.OutcomeOverloaded,
			kind: kindRefusal, reason: "over_in_flight", closeConn: true, retryAfter: 1}
	}
	return nil
}

func (f *failure) Error() string { return f.msg }

// encodeError renders an error answer in ep's format (JSON by default).
func encodeError(ep *webhook.Endpoint, status int, msg string) (string, []byte) {
	if ep.EncodeError != nil {
		return ep.EncodeError(status, msg)
	}
	return webhook.EncodeJSONError(status, msg)
}

// SourceRetryAfter is the Retry-After, in seconds, of a 503 a source
// answers (a write that failed): Vapi's backoffPlan paces its retries,
// other senders read this.
const SourceRetryAfter = 1

// sourceError is the adapter from a source's error to its answer, outcome
// and log line: a *webhook.Error says the status and what the caller is
// told; anything else is a 500 that tells nothing.
func (g *Gateway) sourceError(r *http.Request, ep *webhook.Endpoint, err error) (webhook.Reply, string) {
	we := &webhook.Error{Status: http.StatusInternalServerError, Msg: "internal error", Err: err}
	if e := (*webhook.Error)(nil); errors.As(err, &e) {
		we = e
		if we.Status < 400 || we.Status > 599 {
			// Not an error status: a bug in the source, answered as one.
			c := *we
			c.Status, c.Msg = http.StatusInternalServerError, "internal error"
			we = &c
		}
	}
	reply := webhook.Reply{Status: we.Status, Type: we.Type, CallID: we.CallID, Deadline: we.Deadline}
	if we.RetryAfter > 0 {
		reply.Header = http.Header{"Retry-After": {strconv.Itoa(we.RetryAfter)}}
	}
	reply.ContentType, reply.Body = encodeError(ep, we.Status, we.Msg)
	if we.Status == http.StatusServiceUnavailable && we.RetryAfter <= 0 {
		// What could not be kept (a database down) is retried: say when.
		reply.Header = http.Header{"Retry-After": {strconv.Itoa(SourceRetryAfter)}}
	}
	outcome := metrics.OutcomeBadRequest
	if we.Status >= 500 {
		outcome = metrics.OutcomeError
		g.log.Error("webhook not handled", logkey.Type, we.Type, logkey.CallID, we.CallID, logkey.Status, we.Status, logkey.Err, we.Err)
	} else {
		// A body that is authentic but not a message the source can read:
		// aggregated like every refusal (its detail is in the answer).
		client, peer := g.clientAddr(r)
		g.refusals.refused(kindRefusal, "invalid_message", client, peer)
	}
	if reply.Type == "" {
		reply.Type = "none"
	}
	return reply, outcome
}

// serveSource reads, authenticates and de-duplicates one request, then has
// ep handle it. It returns the reply to write and its outcome, or the
// failure that refused the request.
func (g *Gateway) serveSource(s *served, w http.ResponseWriter, r *http.Request, ep *webhook.Endpoint, start time.Time) (webhook.Reply, string, *failure) {
	var b body
	defer g.bodies.release(&b)
	// Deadlines are on the real clock, whatever g.now says.
	pace := pacer{w: w, now: time.Now, limit: time.Now().Add(g.cfg.ReadTimeout)}
	if err := g.bodies.read(r, ep.MaxBodyBytes, &b, &pace); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return webhook.Reply{}, "", &failure{status: http.StatusRequestEntityTooLarge, msg: "request body too large", outcome: metrics.OutcomeTooLarge, kind: kindRefusal, reason: "body_too_large"}
		case errors.Is(err, errOverBudget):
			return webhook.Reply{}, "", &failure{status: http.StatusServiceUnavailable, msg: "server busy, retry", outcome: metrics.OutcomeOverloaded, kind: kindRefusal, reason: "over_body_budget", closeConn: true, retryAfter: 1}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return webhook.Reply{}, "", &failure{status: http.StatusRequestTimeout, msg: "request body too slow", outcome: metrics.OutcomeBadRequest, kind: kindRefusal, reason: "body_too_slow", closeConn: true}
		}
		return webhook.Reply{}, "", &failure{status: http.StatusBadRequest, msg: "could not read request body", outcome: metrics.OutcomeBadRequest, kind: kindRefusal, reason: "body_unreadable"}
	}
	body := b.b

	areq := auth.Request{Method: r.Method, Header: r.Header, Body: body, PublicURL: ep.PublicURL, HTTP: r}
	_, authStep := g.step(r, "authenticate")
	err := ep.Verifier.Verify(&areq, start)
	authStep.authenticated(err)
	if err != nil {
		reason := auth.ReasonOf(err)
		g.metrics.AuthFailures.WithLabelValues(s.src.Name(), string(reason)).Inc()
		status, msg := http.StatusUnauthorized, "unauthorized"
		if ep.AuthFailureStatus != 0 {
			status, msg = ep.AuthFailureStatus, http.StatusText(ep.AuthFailureStatus)
		}
		return webhook.Reply{}, "", &failure{status: status, msg: msg, outcome: metrics.OutcomeUnauthorized, kind: kindAuth, reason: string(reason)}
	}

	var key replay.Key
	if ep.ReplayKey != nil {
		key = ep.ReplayKey(r, body)
	} else {
		key = replay.KeyOf(body)
	}
	for i := range key {
		key[i] ^= s.salt[i]
	}
	var dec *webhook.Decoded
	if ep.Decode != nil {
		// Read once, before the claim, so that a shared guard claims the
		// request and reads its call in one round trip. A body the source
		// cannot read is refused again on every try, never remembered.
		d, err := ep.Decode(body)
		if err != nil {
			reply, outcome := g.sourceError(r, ep, err)
			return reply, outcome, nil
		}
		dec = &d
		r = r.WithContext(replay.WithSubject(r.Context(), d.Subject))
	}
	_, begin := g.step(r, "replay.begin")
	cached, replayed, ticket, err := g.replay.BeginAt(r.Context(), key, start, areq.ValidUntil)
	begin.begun(replayed, ticket.Local, err)
	if err != nil {
		return webhook.Reply{}, "", &failure{status: http.StatusServiceUnavailable, msg: "request already in progress", outcome: metrics.OutcomeError, kind: kindRefusal, reason: "delivery_in_progress", retryAfter: SourceRetryAfter}
	}
	if replayed {
		client, peer := g.clientAddr(r)
		g.refusals.replayed(cached.Type, cached.CallID, client, peer)
		return webhook.Reply{Status: cached.Status, Body: cached.Body, ContentType: cached.ContentType, Type: "none"}, metrics.OutcomeReplay, nil
	}
	// The ticket is released on every path, a panic included.
	finished := false
	defer func() {
		if !finished {
			g.replay.Finish(ticket, replay.Response{}, false)
		}
	}()

	ctx := replay.WithTicket(r.Context(), ticket)
	if ticket.Local {
		// Redis is unreachable: the source decides what may be handled
		// on this replica's memory (state.IsLocal).
		ctx = state.WithLocal(ctx)
	}
	reply, err := g.handle(r.WithContext(ctx), ep, body, dec)
	outcome := metrics.OutcomeOK
	switch {
	case err != nil:
		reply, outcome = g.sourceError(r, ep, err)
	case reply.Status >= 500:
		outcome = metrics.OutcomeError
	case reply.Status == http.StatusBadRequest:
		outcome = metrics.OutcomeBadRequest
	}
	// An answer computed after the client went away (its context cancelled)
	// may be a failure caused by the cancellation, and a 5xx is passing:
	// neither is stored, so that the next identical request does the work.
	_, fin := g.step(r, "replay.finish")
	defer fin.finished()
	g.replay.Finish(ticket, replay.Response{Status: reply.Status, Body: reply.Body, ContentType: reply.ContentType, CallID: reply.CallID, Type: reply.Type},
		reply.Status < 500 && r.Context().Err() == nil)
	finished = true
	return reply, outcome, nil
}

// handle runs the source's handler; a panic in it is an error like any
// other (a 500 in the source's format, counted, never remembered).
func (g *Gateway) handle(r *http.Request, ep *webhook.Endpoint, body []byte, dec *webhook.Decoded) (reply webhook.Reply, err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.metrics.Panics.Inc()
			g.log.Error("panic in handler", logkey.Path, r.URL.Path, logkey.Panic, v)
			reply, err = webhook.Reply{}, errPanic
		}
	}()
	if dec != nil {
		return ep.HandleDecoded(r.Context(), *dec)
	}
	return ep.Handle(r.Context(), body)
}

var errPanic = errors.New("the handler panicked")

// InFlight returns how many webhook requests are being served.
func (g *Gateway) InFlight() int64 { return g.inFlight.Load() }

// Wait returns when no webhook request is being served any more, or with
// ctx's error. After the listener has closed, no new request starts, so
// this waits for those still running (each bounded by its deadline).
func (g *Gateway) Wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for g.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// checkSlow logs and counts an answer that took more than its endpoint's
// share of the provider's deadline, and logs every answer at debug level.
func (g *Gateway) checkSlow(s *served, r *http.Request, ep *webhook.Endpoint, reply webhook.Reply, took time.Duration) {
	if reply.Deadline > 0 && took > time.Duration(float64(reply.Deadline)*ep.SlowRatio) {
		g.metrics.DeadlineWarnings.WithLabelValues(s.src.Name(), reply.Type).Inc()
		g.log.Warn("slow webhook answer", logkey.Source, s.src.Name(), logkey.Type, reply.Type, logkey.CallID, reply.CallID, logkey.DurationMS, ms(took), logkey.DeadlineMS, ms(reply.Deadline))
	}
	if g.log.Enabled(r.Context(), slog.LevelDebug) {
		g.log.Debug("handled", logkey.Type, reply.Type, logkey.CallID, reply.CallID, logkey.Status, reply.Status, logkey.DurationMS, ms(took))
	}
}

// BodiesInFlight returns how many requests are reading or holding a body.
func (g *Gateway) BodiesInFlight() int64 { return g.bodies.inFlight.Load() }

// BodyBytesHeld returns the bytes of body buffers held by requests in flight.
func (g *Gateway) BodyBytesHeld() int64 { return g.bodies.held.Load() }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w http.ResponseWriter, status int, body []byte) { write(w, status, "", body) }

// write writes an answer; an empty contentType is JSON.
func write(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	if contentType == "" {
		h["Content-Type"] = jsonContentType
	} else {
		h.Set("Content-Type", contentType)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

var jsonContentType = []string{"application/json"}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, webhook.ErrorJSON(msg))
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

// recoverer turns a panic in the other routes (health, metrics, the demo
// API) into a 500 without leaking its detail; webhook sources recover in
// handleSource, in their own format.
func (g *Gateway) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.metrics.Panics.Inc()
				g.log.Error("panic in handler", logkey.Path, r.URL.Path, logkey.Panic, v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// ShareLimits makes the rate limits global across n replicas behind one
// load balancer: each replica enforces its share (limits divided by n),
// so that together they allow what the limits say. With shared state the
// replicas count each other in Redis and call this as their number
// changes.
func (g *Gateway) ShareLimits(n int) {
	g.perSource.Share(n)
	g.routeMu.Lock()
	defer g.routeMu.Unlock()
	g.share = n
	for _, b := range g.routeBuckets {
		b.Share(n)
	}
}
