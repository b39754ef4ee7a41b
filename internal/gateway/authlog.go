package gateway

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
)

// authLog aggregates authentication-failure log lines.
//
// Threat: every unauthenticated request used to write one WARN line, so a
// flood of bad requests became unbounded log volume (disk, log shipping
// cost, lost signal). The first failure of each (source address, reason) in
// an interval is logged at once; later ones are only counted, and one line
// per pair with the count closes the interval. Pairs beyond maxKeys in one
// interval are counted under the source "other".
type authLog struct {
	log     *slog.Logger
	every   time.Duration
	now     func() time.Time
	maxKeys int

	mu     sync.Mutex
	start  time.Time
	counts map[authKey]int // failures not logged individually
}

type authKey struct {
	source string
	reason auth.Reason
}

// otherSource collects the sources beyond maxKeys.
const otherSource = "other"

func newAuthLog(log *slog.Logger, every time.Duration, now func() time.Time) *authLog {
	return &authLog{log: log, every: every, now: now, maxKeys: 1000, start: now(), counts: make(map[authKey]int)}
}

// failed records one failure from remoteAddr (host:port; the port is
// dropped so that a client's connections count as one source).
func (a *authLog) failed(remoteAddr string, reason auth.Reason) {
	src := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		src = h
	}
	now := a.now()
	a.mu.Lock()
	if now.Sub(a.start) >= a.every {
		a.flushLocked(now)
	}
	k := authKey{src, reason}
	n, seen := a.counts[k]
	if !seen && len(a.counts) >= a.maxKeys {
		k.source = otherSource
		n, seen = a.counts[k]
	}
	if seen {
		a.counts[k] = n + 1
		a.mu.Unlock()
		return
	}
	a.counts[k] = 0
	a.mu.Unlock()
	a.log.Warn("authentication failed", logkey.Reason, string(reason), logkey.Source, k.source)
}

// flushLocked writes one line per pair with failures not yet logged, and
// starts a new interval.
func (a *authLog) flushLocked(now time.Time) {
	for k, n := range a.counts {
		if n > 0 {
			a.log.Warn("authentication failures", logkey.Reason, string(k.reason), logkey.Source, k.source, logkey.Count, n,
				logkey.IntervalS, now.Sub(a.start).Seconds())
		}
	}
	clear(a.counts)
	a.start = now
}

func (a *authLog) flush() {
	a.mu.Lock()
	a.flushLocked(a.now())
	a.mu.Unlock()
}

// run closes each interval on time until ctx ends, then flushes.
func (a *authLog) run(ctx context.Context) {
	periodic.Run(ctx, a.every, func() {
		a.mu.Lock()
		if now := a.now(); now.Sub(a.start) >= a.every {
			a.flushLocked(now)
		}
		a.mu.Unlock()
	})
	a.flush()
}
