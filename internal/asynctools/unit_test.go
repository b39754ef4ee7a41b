package asynctools

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/tools"
)

// TestAESGCM: a sealed value opens with its aad and key only, and an
// altered one does not open.
func TestAESGCM(t *testing.T) {
	s := testKey(t)
	sealed, err := s.Seal("c", []byte("secret args"), []byte("job-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("plaintext in the sealed value")
	}
	if p, err := s.Open("c", sealed, []byte("job-1")); err != nil || string(p) != "secret args" {
		t.Fatalf("open: %q, %v", p, err)
	}
	again, _ := s.Seal("c", []byte("secret args"), []byte("job-1"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	altered := append([]byte(nil), sealed...)
	altered[len(altered)-1] ^= 1
	for name, tc := range map[string]struct {
		s          Sealer
		sealed, ad []byte
	}{
		"other job's aad": {s, sealed, []byte("job-2")},
		"altered":         {s, altered, []byte("job-1")},
		"other key":       {testKey(t), sealed, []byte("job-1")},
		"truncated":       {s, sealed[:10], []byte("job-1")},
	} {
		if _, err := tc.s.Open("c", tc.sealed, tc.ad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err %v, want ErrOpen", name, err)
		}
	}
	if _, err := NewAESGCM(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key must be refused")
	}
}

func TestBackoff(t *testing.T) {
	q := &Queue{o: Options{BackoffBase: time.Second, BackoffMax: 30 * time.Second}}
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, q.backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", got, want)
		}
	}
	if d := q.backoff(1000); d != 30*time.Second {
		t.Fatalf("backoff(1000) = %s", d)
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		o      tools.Outcome
		status int
		want   bool
	}{
		{tools.OutcomeTimeout, 0, true},
		{tools.OutcomeUnreachable, 0, true},
		{tools.OutcomeBusy, 0, true},
		{tools.OutcomeHTTPError, http.StatusServiceUnavailable, true},
		{tools.OutcomeHTTPError, http.StatusTooManyRequests, true},
		{tools.OutcomeHTTPError, http.StatusRequestTimeout, true},
		{tools.OutcomeHTTPError, http.StatusBadRequest, false},
		{tools.OutcomeHTTPError, http.StatusNotFound, false},
		{tools.OutcomeHTTPError, http.StatusConflict, false},
		{tools.OutcomeBadArgs, 0, false},
		{tools.OutcomeTooLarge, 200, false},
		{tools.OutcomeUnknownTool, 0, false},
	} {
		if got := retryable(tc.o, tc.status); got != tc.want {
			t.Errorf("retryable(%s, %d) = %v, want %v", tc.o, tc.status, got, tc.want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := IdempotencyKey("call-1", "tc-1")
	if k != IdempotencyKey("call-1", "tc-1") || k == IdempotencyKey("call-1", "tc-2") || k == IdempotencyKey("call-1t", "c-1") {
		t.Fatal("the key must be stable per job and differ between jobs")
	}
	if !strings.HasPrefix(k, "vgat_") || len(k) != 5+32 || strings.Contains(k, "call") {
		t.Fatalf("key %q: want an opaque vgat_ and 32 hex digits", k)
	}
}

// TestOpenAndEnqueueRefusals: what Open and Enqueue refuse before touching
// a job.
func TestOpenAndEnqueueRefusals(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	b := Backend{Driver: storage.DriverSQLite, DataDir: dir}
	cfgs := []tools.Config{asyncTool(t, "slow", "http://127.0.0.1:9/x", nil), {Name: "sync", URL: "http://127.0.0.1:9/y"}}
	base := Options{Tools: cfgs, Executor: RouterExecutor{}, Deliverer: &recDeliverer{}, Sealer: testKey(t)}
	for name, tc := range map[string]struct {
		b    Backend
		mut  func(*Options)
		want string
	}{
		"no sealer":          {b, func(o *Options) { o.Sealer = nil }, "required"},
		"unknown driver":     {Backend{Driver: "mysql", DataDir: dir}, nil, "not sqlite or postgres"},
		"no data dir":        {Backend{Driver: storage.DriverSQLite}, nil, "data directory"},
		"rescue too soon":    {b, func(o *Options) { o.RescueAfter = time.Second }, "RescueAfter 1s must exceed"},
		"dedup below tool":   {b, func(o *Options) { o.DedupRetention = time.Second }, "DedupRetention 1s must exceed"},
		"bad postgres url":   {Backend{Driver: storage.DriverPostgres, PostgresURL: "host=x password=hunter2"}, nil, "does not parse"},
		"backoff max < base": {b, func(o *Options) { o.BackoffBase, o.BackoffMax = time.Minute, time.Second }, "BackoffMax"},
	} {
		o := base
		if tc.mut != nil {
			tc.mut(&o)
		}
		_, err := Open(ctx, tc.b, o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: err %v, want one saying %q", name, err, tc.want)
		}
	}
	q, err := Open(ctx, b, base)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Enqueue(ctx, Job{CallID: "c", ToolCallID: "t", Tool: "sync"}); !errors.Is(err, ErrNotAsync) {
		t.Errorf("enqueue of a synchronous tool: %v", err)
	}
	if err := q.Enqueue(ctx, Job{CallID: "c", Tool: "slow"}); !errors.Is(err, ErrInvalidJob) {
		t.Errorf("enqueue without a tool call id: %v", err)
	}
	// The default rescue follows the tools' timeouts.
	if want := time.Second + DefaultDeliveryTimeout + jobSlack + rescueMargin; q.o.RescueAfter != want {
		t.Errorf("RescueAfter %s, want %s", q.o.RescueAfter, want)
	}
}
