// Package metrics provides voicegate's Prometheus metrics on a registry of
// its own (no global state), with label values kept to bounded sets.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Request outcomes (label values).
const (
	OutcomeOK           = "ok"
	OutcomeReplay       = "replay"
	OutcomeUnauthorized = "unauthorized"
	OutcomeTooLarge     = "too_large"
	OutcomeBadRequest   = "bad_request"
	OutcomeError        = "error"
	OutcomeOverloaded   = "overloaded"
	OutcomeRateLimited  = "rate_limited"
	OutcomeForbidden    = "forbidden"
)

// Metrics holds every collector.
type Metrics struct {
	// Registry gathers every metric; they are registered through reg,
	// which adds the replica label.
	Registry         *prometheus.Registry
	reg              prometheus.Registerer
	Requests         *prometheus.CounterVec   // source, type, outcome
	AuthFailures     *prometheus.CounterVec   // source, reason
	Latency          *prometheus.HistogramVec // source, type
	ToolCalls        *prometheus.CounterVec   // tool, outcome
	ToolLatency      *prometheus.HistogramVec // tool
	DeadlineWarnings *prometheus.CounterVec   // source, type
	SessionsRejected prometheus.Counter
	SessionsExpired  prometheus.Counter
	StoreErrors      *prometheus.CounterVec // op
	// StateLocal counts requests handled or refused on this replica's own
	// state while Redis was unreachable (decision).
	StateLocal    *prometheus.CounterVec
	ConfigReloads *prometheus.CounterVec // result
	Panics        prometheus.Counter
	// The barge-in engine's decisions, by decision and reason.
	BargeinDecisions *prometheus.CounterVec // decision, reason
	// Live Call Control messages sent, by type and outcome, and the time
	// from the decision that caused one to Vapi's answer.
	ControlMessages *prometheus.CounterVec   // type, outcome
	ControlLatency  *prometheus.HistogramVec // type
	// Vapi's hang messages (sync tool calls that missed their deadline
	// are ToolCalls with outcome timeout).
	Hangs prometheus.Counter
	// Async tool jobs by tool and event (enqueued, completed, ...).
	AsyncJobs *prometheus.CounterVec // tool, event
	// Optional fields of an unexpected type or format dropped while
	// decoding an authenticated message, by message type and field.
	DroppedFields *prometheus.CounterVec // type, field
	// knowledge-base-request searches by source (api, local) and outcome
	// (documents, none, error), and their time.
	KnowledgeSearches *prometheus.CounterVec   // source, outcome
	KnowledgeLatency  *prometheus.HistogramVec // source
	// DependencyUp is 1 while a dependency's last probe succeeded, 0
	// while it failed (internal/health).
	DependencyUp *prometheus.GaugeVec // dependency
}

// Option changes how New registers the metrics.
type Option func(*options)

type options struct{ replica string }

// ReplicaLabel is the constant label naming the replica (config replica)
// on every metric, the Go runtime's and the process's included.
const ReplicaLabel = "replica"

// WithReplica adds the constant label replica=name to every metric (none
// when name is empty).
func WithReplica(name string) Option { return func(o *options) { o.replica = name } }

// New registers every metric. activeCalls, replayEntries and replayEarly
// are read at scrape time.
func New(activeCalls, replayEntries, replayEarly func() float64, opts ...Option) *Metrics {
	var o options
	for _, f := range opts {
		f(&o)
	}
	reg := prometheus.NewRegistry()
	var r prometheus.Registerer = reg
	if o.replica != "" {
		r = prometheus.WrapRegistererWith(prometheus.Labels{ReplicaLabel: o.replica}, reg)
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		Registry: reg,
		reg:      r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_requests_total", Help: "Webhook requests by source (the webhook provider), message type and outcome.",
		}, []string{"source", "type", "outcome"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_auth_failures_total", Help: "Requests refused by authentication, by source and reason.",
		}, []string{"source", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "voicegate_request_duration_seconds", Help: "Time from request start to response, by source and message type.", Buckets: buckets,
		}, []string{"source", "type"}),
		ToolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_tool_calls_total", Help: "Tool calls by tool and outcome.",
		}, []string{"tool", "outcome"}),
		ToolLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "voicegate_tool_duration_seconds", Help: "Tool call latency including the internal API, by tool.", Buckets: buckets,
		}, []string{"tool"}),
		DeadlineWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_deadline_warnings_total", Help: "Requests that used more than the configured share of their deadline, by source and message type.",
		}, []string{"source", "type"}),
		SessionsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicegate_sessions_rejected_total", Help: "New calls not tracked because the session table was full.",
		}),
		SessionsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicegate_sessions_expired_total", Help: "Sessions removed by the TTL sweeper.",
		}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_store_errors_total", Help: "Failed writes to the call store, by operation.",
		}, []string{"op"}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "voicegate_panics_total",
			Help: "Handler panics recovered (answered 500): each is a bug to report."}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegate_config_reloads_total", Help: "Configuration reloads (SIGHUP), by result (ok, error).",
		}, []string{"result"}),
	}
	m.BargeinDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_bargein_decisions_total", Help: "Barge-in engine decisions on speech and transcript events, by decision (interrupt, none) and reason.",
	}, []string{"decision", "reason"})
	m.ControlMessages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_control_messages_total", Help: "Live Call Control messages sent to calls' control URLs, by message type and outcome.",
	}, []string{"type", "outcome"})
	m.ControlLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "voicegate_control_latency_seconds", Help: "Time from the decision that caused a Live Call Control message to Vapi's answer, by message type.", Buckets: buckets,
	}, []string{"type"})
	m.Hangs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "voicegate_hangs_total", Help: "Vapi hang messages: the assistant stalled (a slow model, voice or tool).",
	})
	m.AsyncJobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_async_jobs_total", Help: "Async tool jobs by tool and event: enqueued, duplicate, retried, completed, discarded, delivery_failed, dropped.",
	}, []string{"tool", "event"})
	m.DroppedFields = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_dropped_fields_total", Help: "Optional fields of an unexpected type or format left out of an authenticated message (which was still used), by message type and field.",
	}, []string{"type", "field"})
	m.StateLocal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_state_local_total", Help: "Webhook requests checked against this replica's memory only because Redis (state.driver redis) was unreachable, by decision: handled (no side effects, or state.on_unavailable local) or refused (503 + Retry-After).",
	}, []string{"decision"})
	m.KnowledgeSearches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegate_knowledge_searches_total", Help: "knowledge-base-request searches by source (api: an internal search API; local: voicegate's document store) and outcome (documents, none, error).",
	}, []string{"source", "outcome"})
	m.KnowledgeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "voicegate_knowledge_search_seconds", Help: "Time to answer a knowledge-base-request, by source.", Buckets: buckets,
	}, []string{"source"})
	m.DependencyUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "voicegate_dependency_up", Help: "1 while the dependency's last probe succeeded, 0 while it failed, by dependency (sqlite, postgres, redis).",
	}, []string{"dependency"})
	r.MustRegister(m.StateLocal, m.DependencyUp, m.KnowledgeSearches, m.KnowledgeLatency, m.AsyncJobs, m.DroppedFields, m.Requests, m.AuthFailures, m.Latency, m.ToolCalls, m.ToolLatency, m.DeadlineWarnings,
		m.SessionsRejected, m.SessionsExpired, m.StoreErrors, m.ConfigReloads, m.Panics,
		m.BargeinDecisions, m.ControlMessages, m.ControlLatency, m.Hangs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_active_calls", Help: "Live call sessions."}, activeCalls),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_replay_cache_entries", Help: "Requests remembered for replay protection."}, replayEntries),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "voicegate_replay_early_evictions_total",
			Help: "Requests forgotten for capacity before their replay window ended: raise vapi.replay.capacity if this grows."}, replayEarly),
	)
	return m
}

// MustRegister registers more collectors (another component's), with the
// replica label like every other metric.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// ObserveWAL registers, read at scrape time, the size of the embedded
// store's write-ahead log and how often its checkpoints restarted it
// (restarts) or could not, a reader holding it (busy).
func (m *Metrics) ObserveWAL(size, restarts, busy func() float64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_sqlite_wal_bytes",
			Help: "Size of the SQLite write-ahead log file; bounded by storage.wal_limit_bytes plus what one checkpoint interval writes."},
			size),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "voicegate_sqlite_wal_restarts_total",
			Help: "Checkpoints that found the write-ahead log over storage.wal_limit_bytes and restarted it."},
			restarts),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "voicegate_sqlite_wal_restarts_busy_total",
			Help: "Checkpoints that found the write-ahead log over its limit but could not restart it because a reader held it; the next one retries."},
			busy),
	)
}

// ObserveRedis registers voicegate_state_redis_up (state.driver redis).
func (m *Metrics) ObserveRedis(up, replicas func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_state_redis_up",
		Help: "1 while Redis (state.driver redis) answers, 0 while requests fall back to this replica's memory."}, up),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_state_replicas",
			Help: "Replicas counted alive in Redis (state.driver redis): the rate limits are divided by it."}, replicas))
}

// ObserveReady registers voicegate_ready, read at scrape time: 1 while the
// gateway should get traffic (what /readyz answers), 0 while it should not.
func (m *Metrics) ObserveReady(ready func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_ready",
		Help: "1 while /readyz answers 200; 0 while draining or while the database is unreachable or its writes fail."}, ready))
}

// TypeMetrics are a message type's collectors, resolved once so that the
// hot path does no label hashing.
type TypeMetrics struct {
	outcomes map[string]prometheus.Counter
	latency  prometheus.Observer
}

// Outcomes lists every request outcome label value.
var Outcomes = []string{OutcomeOK, OutcomeReplay, OutcomeUnauthorized, OutcomeTooLarge, OutcomeBadRequest, OutcomeError, OutcomeOverloaded, OutcomeRateLimited, OutcomeForbidden}

// ForType returns the pre-resolved collectors of a source's message type.
func (m *Metrics) ForType(source, t string) *TypeMetrics {
	tm := &TypeMetrics{outcomes: make(map[string]prometheus.Counter, len(Outcomes)), latency: m.Latency.WithLabelValues(source, t)}
	for _, o := range Outcomes {
		tm.outcomes[o] = m.Requests.WithLabelValues(source, t, o)
	}
	return tm
}

// Observe counts one request with its outcome and latency.
func (tm *TypeMetrics) Observe(outcome string, d time.Duration) {
	tm.outcomes[outcome].Inc()
	tm.latency.Observe(d.Seconds())
}

// ObserveTool records one tool call.
func (m *Metrics) ObserveTool(tool, outcome string, d time.Duration) {
	m.ToolCalls.WithLabelValues(tool, outcome).Inc()
	if d > 0 {
		m.ToolLatency.WithLabelValues(tool).Observe(d.Seconds())
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
