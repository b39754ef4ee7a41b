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
