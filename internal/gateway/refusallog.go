package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
)

// refusalLog aggregates the log lines of refused requests: authentication
// failures, bodies too large or too slow, the server over its body budget,
// bodies that are not a message.
//
// Threat: one WARN line per refused request turns a flood of bad requests
// into unbounded log volume (disk, log shipping cost, lost signal). The
// first refusal of each (kind, reason, client) in an interval is logged at
// once; later ones are only counted, and one line per key with the count
// closes the interval. Keys beyond maxKeys in one interval are counted
// under the client "other".
type refusalLog struct {
	log     *slog.Logger
	every   time.Duration
	now     func() time.Time
	maxKeys int

	mu     sync.Mutex
	start  time.Time
	counts map[refusalKey]int // refusals not logged individually
	// pending are authentication failures of intervals closed by a
	// request, reported by the next tick (one batch per interval).
	pending [][]authCount
	// onAuth, if set, receives each interval's authentication failures
	// per source address (for the audit log), outside the lock: subject
	// is the address ("other" for those past the busiest), detail the
	// counts.
	onAuth func(subject, detail string)
}

// refusalKind is a family of lines, with its two messages, its level and
// the key its reason is logged under.
type refusalKind struct {
	first, many string
	level       slog.Level
	reasonKey   string
}

var (
	kindAuth    = &refusalKind{"authentication failed", "authentication failures", slog.LevelWarn, logkey.Reason}
	kindRefusal = &refusalKind{"request refused", "requests refused", slog.LevelWarn, logkey.Reason}
	// A replay is answered, not refused, but whoever holds a captured
	// request can send it without end: its lines are bounded the same way.
	kindReplay = &refusalKind{"replayed request answered from cache", "replayed requests answered from cache", slog.LevelInfo, logkey.Type}
)

type refusalKey struct {
	kind   *refusalKind
	reason string
	// client is the caller's address (the forwarded one behind a trusted
	// proxy); peer is the connection's, logged when it differs.
	client, peer string
	// callID names the call, when known (replays).
	callID string
}

// otherClient collects the clients beyond maxKeys.
const otherClient = "other"

func newRefusalLog(log *slog.Logger, every time.Duration, now func() time.Time) *refusalLog {
	return &refusalLog{log: log, every: every, now: now, maxKeys: 1000, start: now(), counts: make(map[refusalKey]int)}
}

// refused records one refusal of kind for reason from client (through
// peer, when a trusted proxy forwarded it).
func (a *refusalLog) refused(kind *refusalKind, reason, client, peer string) {
	a.record(refusalKey{kind: kind, reason: reason, client: client, peer: peer})
}

// replayed records one replay of call id's message of type typ.
func (a *refusalLog) replayed(typ, callID, client, peer string) {
	a.record(refusalKey{kind: kindReplay, reason: typ, client: client, peer: peer, callID: callID})
}

func (a *refusalLog) record(k refusalKey) {
	now := a.now()
	a.mu.Lock()
	var auths []authCount
	if now.Sub(a.start) >= a.every {
		auths = a.flushLocked(now)
	}
	// Reported by the next tick (run), never on this request's path.
	if len(auths) > 0 {
		a.pending = append(a.pending, auths)
	}
	n, seen := a.counts[k]
	if !seen && len(a.counts) >= a.maxKeys {
		k.client, k.peer, k.callID = otherClient, "", ""
		n, seen = a.counts[k]
	}
	if seen {
		a.counts[k] = n + 1
		a.mu.Unlock()
		return
	}
	a.counts[k] = 0
	a.mu.Unlock()
	a.log.Log(context.Background(), k.kind.level, k.kind.first, k.attrs()...)
}

func (k refusalKey) attrs(extra ...any) []any {
	attrs := []any{k.kind.reasonKey, k.reason}
	if k.callID != "" {
		attrs = append(attrs, logkey.CallID, k.callID)
	}
	attrs = append(attrs, logkey.Client, k.client)
	if k.peer != "" && k.peer != k.client {
		attrs = append(attrs, logkey.Peer, k.peer)
	}
	return append(attrs, extra...)
}

// authCount is one interval's authentication failures of a reason and
// client.
type authCount struct {
	reason, client string
	count          int
}

// flushLocked writes one line per key with refusals not yet logged, and
// starts a new interval. It returns the interval's authentication
// failures, for onAuth once the lock is released.
func (a *refusalLog) flushLocked(now time.Time) []authCount {
	var auths []authCount
	for k, n := range a.counts {
		if n > 0 {
			a.log.Log(context.Background(), k.kind.level, k.kind.many, k.attrs(logkey.Count, n, logkey.IntervalS, now.Sub(a.start).Seconds())...)
		}
		if k.kind == kindAuth && a.onAuth != nil {
			auths = append(auths, authCount{k.reason, k.client, n + 1})
		}
	}
	clear(a.counts)
	a.start = now
	return auths
}

func (a *refusalLog) flush() {
	a.mu.Lock()
	batches := append(a.pending, a.flushLocked(a.now()))
	a.pending = nil
	a.mu.Unlock()
	if a.onAuth != nil {
		for _, b := range batches {
			a.report(b)
		}
	}
}

// auditSources is how many source addresses get an audit entry of their
// own per interval; the others share one. A flood from many addresses
// makes a bounded number of entries a minute.
const auditSources = 20

// report sends the interval's authentication failures to onAuth, one
// entry per source address with its count by reason, the busiest
// auditSources addresses first, then one for all the others.
func (a *refusalLog) report(auths []authCount) {
	type source struct {
		client  string
		total   int
		reasons map[string]int
	}
	by := map[string]*source{}
	for _, c := range auths {
		s := by[c.client]
		if s == nil {
			s = &source{client: c.client, reasons: map[string]int{}}
			by[c.client] = s
		}
		s.total += c.count
		s.reasons[c.reason] += c.count
	}
	list := make([]*source, 0, len(by))
	for _, s := range by {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].total != list[j].total {
			return list[i].total > list[j].total
		}
		return list[i].client < list[j].client
	})
	other, others, overflow := 0, 0, false
	for i, s := range list {
		if i >= auditSources || s.client == otherClient {
			other += s.total
			others++
			overflow = overflow || s.client == otherClient
			continue
		}
		reasons := make([]string, 0, len(s.reasons))
		for r, n := range s.reasons {
			reasons = append(reasons, fmt.Sprintf("%s:%d", r, n))
		}
		sort.Strings(reasons)
		a.onAuth(s.client, fmt.Sprintf("count=%d reasons=%s", s.total, strings.Join(reasons, ",")))
	}
	if other > 0 {
		// Past the log's own bound, clients are no longer told apart.
		cmp := "="
		if overflow {
			cmp = ">="
		}
		a.onAuth(otherClient, fmt.Sprintf("count=%d sources%s%d", other, cmp, others))
	}
}

// run closes an interval at every tick until ctx ends, then flushes. (A
// tick that checked the interval's age would find it a few microseconds
// short and wait for the next one: intervals of twice the length.)
func (a *refusalLog) run(ctx context.Context) {
	periodic.Run(ctx, a.every, a.flush)
	a.flush()
}
