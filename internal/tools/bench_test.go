package tools

import (
	"context"
	"encoding/json"
	"github.com/voicegate/voicegate/internal/confval"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapi"
)

// BenchmarkCallGET measures one tool call on a GET tool with a configured
// query and two arguments, end to end over loopback: the httptest server on
// 127.0.0.1 stands in for an internal API.
func BenchmarkCallGET(b *testing.B) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"slot":"10:30","ok":true}`)
	}))
	defer api.Close()
	cfg := Config{
		Name: "getAppointment", URL: api.URL + "/appointments?tenant=acme&region=eu", Method: http.MethodGet,
		Timeout: confval.Duration(2 * time.Second), MaxConcurrency: 8, MaxResponseBytes: 1 << 10,
		Headers: map[string]HeaderValue{"Authorization": {Value: "Bearer internal"}},
	}
	r, err := New([]Config{cfg}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	inv := vapi.Invocation{ID: "tc-1", Name: "getAppointment", Args: json.RawMessage(`{"date":"2026-12-01","n":3}`)}
	ci := CallInfo{CallID: "call-1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Call(ctx, ci, inv); res.Error != "" {
			b.Fatal(res.Error)
		}
	}
}

// BenchmarkRequestGET and BenchmarkRequestPOST measure only building the
// request (arguments checked against the configured query, query or body,
// headers), the part of the hot path this package owns; nothing is sent.
func BenchmarkRequestGET(b *testing.B) { benchRequest(b, http.MethodGet) }

// BenchmarkRequestPOST: see BenchmarkRequestGET.
func BenchmarkRequestPOST(b *testing.B) { benchRequest(b, http.MethodPost) }

func benchRequest(b *testing.B, method string) {
	cfg := Config{
		Name: "getAppointment", URL: "http://127.0.0.1:9/appointments?tenant=acme&region=eu", Method: method,
		Timeout: confval.Duration(2 * time.Second), MaxConcurrency: 8, MaxResponseBytes: 1 << 10,
		Headers: map[string]HeaderValue{"Authorization": {Value: "Bearer internal"}},
	}
	r, err := New([]Config{cfg}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	t := r.tools["getAppointment"]
	inv := vapi.Invocation{ID: "tc-1", Name: "getAppointment", Args: json.RawMessage(`{"date":"2026-12-01","n":3}`)}
	ci := CallInfo{CallID: "call-1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.request(ctx, ci, inv); err != nil {
			b.Fatal(err)
		}
	}
}
