package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusalLogIsBounded: however many distinct clients an attacker uses
// (forged X-Forwarded-For behind a trusted proxy, or a botnet), one
// interval logs at most maxKeys first lines, plus one for "other"; the
// rest are counted.
func TestRefusalLogIsBounded(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1e9, 0)
	l := newRefusalLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute, func() time.Time { return now })
	for i := 0; i < 1500; i++ {
		l.refused(kindRefusal, "body_too_large", fmt.Sprintf("10.0.%d.%d", i/256, i%256), "")
	}
	if n := strings.Count(buf.String(), `"msg":"request refused"`); n != 1001 {
		t.Fatalf("%d first lines for 1500 clients, want 1001 (1000 clients and other)", n)
	}
	buf.Reset()
	now = now.Add(time.Minute)
	l.run(cancelled())
	if !strings.Contains(buf.String(), `"msg":"requests refused","reason":"body_too_large","client":"other","count":499`) || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("closing line:\n%s", buf.String())
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestAuthAuditPerSource: each interval's authentication failures make one
// audit entry per source address (its count by reason), the busiest
// auditSources first; the rest share one entry, so a flood from many
// addresses makes a bounded number of entries.
func TestAuthAuditPerSource(t *testing.T) {
	now := time.Unix(1_795_000_000, 0)
	a := newRefusalLog(slog.New(slog.DiscardHandler), time.Minute, func() time.Time { return now })
	type entry struct{ subject, detail string }
	var got []entry
	a.onAuth = func(subject, detail string) { got = append(got, entry{subject, detail}) }
	for i := range 25 {
		client := fmt.Sprintf("198.51.100.%d", i)
		for range 30 - i { // 198.51.100.0 is the busiest
			a.refused(kindAuth, "mismatch", client, client)
		}
	}
	a.refused(kindAuth, "missing", "198.51.100.0", "198.51.100.0")
	a.flush()
	if len(got) != auditSources+1 {
		t.Fatalf("%d entries, want %d: %v", len(got), auditSources+1, got)
	}
	if got[0] != (entry{"198.51.100.0", "count=31 reasons=mismatch:30,missing:1"}) {
		t.Fatalf("busiest first: %v", got[0])
	}
	// 198.51.100.20..24 sent 10, 9, 8, 7 and 6: 40 failures from 5 sources.
	if got[auditSources] != (entry{"other", "count=40 sources=5"}) {
		t.Fatalf("the rest: %v", got[auditSources])
	}
}
