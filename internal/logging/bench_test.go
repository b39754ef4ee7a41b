package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"testing"
)

// typicalAttrs are a request's log line as voicegate writes it ("tool call
// failed"): seven attributes, no personal data.
func typicalAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("tool", "getAppointment"),
		slog.String("call_id", "8b1f2c3d-4e5f-4a6b-9c7d-0e1f2a3b4c5d"),
		slog.String("tool_call_id", "call_Xy7Qm2Lp9Zr4Tw8Kv3Nb6"),
		slog.String("outcome", "http_error"),
		slog.Float64("duration_ms", 12.345),
		slog.Int("status", 502),
		slog.String("err_class", "connection refused"),
	}
}

// piiAttrs are the same line with an eighth attribute: the HTTP client's
// error for a GET tool, quoting a query with the caller's phone number and
// e-mail address.
func piiAttrs() []slog.Attr {
	return append(typicalAttrs(), slog.Any("err", &url.Error{Op: "Get",
		URL: "http://127.0.0.1:8080/callers?phone=%2B15557654321&email=jane.doe%40example.com",
		Err: errors.New("dial tcp 127.0.0.1:8080: connect: connection refused")}))
}

// cleanErrAttrs are the typical line with the same error, its query free
// of personal data (it has escapes, so it is also read decoded).
func cleanErrAttrs() []slog.Attr {
	return append(typicalAttrs(), slog.Any("err", &url.Error{Op: "Get",
		URL: "http://127.0.0.1:8080/appointments?date=2026-12-01&note=after%20lunch",
		Err: errors.New("dial tcp 127.0.0.1:8080: connect: connection refused")}))
}

// BenchmarkLogLine: one line through slog's JSON handler to io.Discard,
// without and with the redacting wrapper.
func BenchmarkLogLine(b *testing.B) {
	json := func() slog.Handler { return slog.NewJSONHandler(io.Discard, nil) }
	for _, bc := range []struct {
		name  string
		h     slog.Handler
		attrs []slog.Attr
	}{
		{"clean/json", json(), typicalAttrs()},
		{"clean/redacting", Redacting(json()), typicalAttrs()},
		{"escaped-error/json", json(), cleanErrAttrs()},
		{"escaped-error/redacting", Redacting(json()), cleanErrAttrs()},
		{"pii/json", json(), piiAttrs()},
		{"pii/redacting", Redacting(json()), piiAttrs()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			log := slog.New(bc.h)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(ctx, slog.LevelWarn, "tool call failed", bc.attrs...)
			}
		})
	}
}
