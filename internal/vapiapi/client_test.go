package vapiapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
	"go.yaml.in/yaml/v3"
)

// The tests here talk to vapitest, which stands in for Vapi's API (an
// external service), or to a bare httptest server on 127.0.0.1.

// sleeps records the waits a client asks for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func config(base, key string) vapiapi.Config {
	c := vapiapi.Config{BaseURL: base, Key: vapiapi.Key(key)}
	c.Complete()
	return c
}

// newClient returns a client of the stand-in whose waits are recorded and
// whose jitter is 0.5.
func newClient(t *testing.T, s *vapitest.Server, log *slog.Logger) (*vapiapi.Client, *sleeps) {
	t.Helper()
	sl := &sleeps{}
	c, err := vapiapi.New(config(s.URL, s.Key), vapiapi.Options{Sleep: sl.sleep, Jitter: func() float64 { return 0.5 }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

func TestConfig(t *testing.T) {
	three, zero, many := 3, 0, 11
	for _, tc := range []struct {
		name string
		c    vapiapi.Config
		want string // a problem's start; "" none
	}{
		{"defaults", vapiapi.Config{}, ""},
		{"loopback http", vapiapi.Config{BaseURL: "http://127.0.0.1:8080"}, ""},
		{"localhost http", vapiapi.Config{BaseURL: "http://localhost:8080/"}, ""},
		{"a proxy path", vapiapi.Config{BaseURL: "https://egress.internal/vapi"}, ""},
		{"plain http", vapiapi.Config{BaseURL: "http://api.vapi.ai"}, "base_url: must be https"},
		{"not a URL", vapiapi.Config{BaseURL: "api.vapi.ai"}, "base_url: \"api.vapi.ai\" is not a base URL"},
		{"credentials in the URL", vapiapi.Config{BaseURL: "https://u:p@api.vapi.ai"}, "base_url:"},
		{"a query", vapiapi.Config{BaseURL: "https://api.vapi.ai/?x=1"}, "base_url:"},
		{"key and key_file", vapiapi.Config{Key: "k", KeyFile: "/f"}, "key: set key or key_file, not both"},
		{"key with a newline", vapiapi.Config{Key: "abc\n"}, "key: contains a space"},
		{"timeout too short", vapiapi.Config{Timeout: confval.Duration(time.Millisecond)}, "timeout:"},
		{"retries 0", vapiapi.Config{Retries: &zero}, ""},
		{"retries 3", vapiapi.Config{Retries: &three}, ""},
		{"retries 11", vapiapi.Config{Retries: &many}, "retries: 11 is outside 0..10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Complete()
			probs := tc.c.Validate()
			if tc.want == "" {
				if len(probs) > 0 {
					t.Fatalf("problems: %v", probs)
				}
				return
			}
			if len(probs) == 0 || !strings.HasPrefix(probs[0], tc.want) {
				t.Fatalf("problems %q, want one starting %q", probs, tc.want)
			}
		})
	}
	t.Run("DefaultsFilled", func(t *testing.T) {
		c := vapiapi.DefaultConfig()
		if c.BaseURL != "https://api.vapi.ai" || c.Timeout.D() != 10*time.Second || c.RetryCount() != 3 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("KeyFile", func(t *testing.T) {
		c := vapiapi.Config{KeyFile: "/run/secrets/vapi"}
		read := func(p string) ([]byte, error) { return []byte("sk-live-123\n"), nil }
		if probs := c.Resolve(nil, read); len(probs) > 0 || c.Key != "sk-live-123" || c.KeyFile != "" {
			t.Fatalf("%v %+v", probs, c)
		}
		c = vapiapi.Config{KeyFile: "/empty"}
		if probs := c.Resolve(nil, func(string) ([]byte, error) { return []byte("\n"), nil }); len(probs) != 1 || !strings.Contains(probs[0], "is empty") {
			t.Fatalf("empty file: %v", probs)
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		if _, err := vapiapi.New(vapiapi.DefaultConfig(), vapiapi.Options{}); err == nil || !strings.Contains(err.Error(), "vapi.api.key is not set") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestKeyNeverPrinted: the key type shows <redacted> through every way a
// value gets printed.
func TestKeyNeverPrinted(t *testing.T) {
	const secret = "sk-very-secret-0123456789"
	c := vapiapi.Config{Key: secret}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "key", c.Key, "cfg", c)
	y, _ := yaml.Marshal(c)
	j, _ := json.Marshal(c)
	for _, out := range []string{
		fmt.Sprintf("%v %s %d %x %q %#v %+v", c.Key, c.Key, c.Key, c.Key, c.Key, c.Key, c),
		fmt.Sprint(c.Key), c.Key.String(), logged.String(), string(y), string(j),
	} {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
			t.Fatalf("key printed: %s", out)
		}
	}
}

// TestListPagesPastTheLimit: 250 assistants, several created in the same
// millisecond (some at page boundaries), all listed once; the requests
// ask for the next page with createdAtLe.
func TestListPagesPastTheLimit(t *testing.T) {
	s := vapitest.New(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	s.SetClock(func() time.Time { n++; return base.Add(time.Duration(n/7) * time.Millisecond) }) // 7 per millisecond
	for i := range 250 {
		s.Put(vapiapi.Assistant, vapiapi.Resource{"name": fmt.Sprintf("a%03d", i)})
	}
	c, _ := newClient(t, s, nil)
	all, err := c.List(t.Context(), vapiapi.Assistant)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.Name()] {
			t.Fatalf("%s listed twice", r.Name())
		}
		seen[r.Name()] = true
	}
	if len(all) != 250 || len(seen) != 250 {
		t.Fatalf("listed %d (%d distinct), want 250", len(all), len(seen))
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Query != "limit=100" || !strings.Contains(reqs[1].Query, "createdAtLe=") {
		t.Fatalf("requests: %+v", reqs)
	}

	t.Run("StructuredOutputs", func(t *testing.T) {
		for i := range 130 {
			s.Put(vapiapi.StructuredOutput, vapiapi.Resource{"name": fmt.Sprintf("so%d", i), "schema": map[string]any{"type": "string"}})
		}
		all, err := c.List(t.Context(), vapiapi.StructuredOutput)
		if err != nil || len(all) != 130 {
			t.Fatalf("%d %v", len(all), err)
		}
	})
	t.Run("TooManyAtOneInstant", func(t *testing.T) {
		s := vapitest.New(t)
		s.SetClock(func() time.Time { return base })
		for i := range 101 {
			s.Put(vapiapi.Tool, vapiapi.Resource{"type": "function", "function": map[string]any{"name": fmt.Sprintf("t%d", i)}})
		}
		c, _ := newClient(t, s, nil)
		if _, err := c.List(t.Context(), vapiapi.Tool); err == nil || !strings.Contains(err.Error(), "more than 100 items were created at") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		all, err := c.List(t.Context(), vapiapi.Squad)
		if err != nil || len(all) != 0 {
			t.Fatalf("%v %v", all, err)
		}
	})
}

// TestRetriesHonourRetryAfter: 429s and 503s are retried after the wait
// they ask for (seconds or a date, capped), other 5xx after a backoff
// with jitter, a create only when Vapi cannot have acted on it.
func TestRetriesHonourRetryAfter(t *testing.T) {
	ctx := t.Context()
	t.Run("Seconds", func(t *testing.T) {
		s := vapitest.New(t)
		s.Inject(vapitest.Fault{Status: 429, RetryAfter: "2", Times: 2})
		c, sl := newClient(t, s, nil)
		if _, err := c.List(ctx, vapiapi.Assistant); err != nil {
			t.Fatal(err)
		}
		if got := sl.got(); len(got) != 2 || got[0] != 2*time.Second || got[1] != 2*time.Second {
			t.Fatalf("waits %v", got)
		}
	})
	t.Run("HTTPDateAndCap", func(t *testing.T) {
		s := vapitest.New(t)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		s.Inject(vapitest.Fault{Status: 503, RetryAfter: now.Add(7 * time.Second).Format(http.TimeFormat)})
		s.Inject(vapitest.Fault{Status: 429, RetryAfter: "3600"})
		sl := &sleeps{}
		c, err := vapiapi.New(config(s.URL, s.Key), vapiapi.Options{Sleep: sl.sleep, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.List(ctx, vapiapi.Tool); err != nil {
			t.Fatal(err)
		}
		if got := sl.got(); len(got) != 2 || got[0] != 7*time.Second || got[1] != vapiapi.MaxRetryAfter {
			t.Fatalf("waits %v", got)
		}
	})
	t.Run("BackoffWithJitter", func(t *testing.T) {
		s := vapitest.New(t)
		s.Inject(vapitest.Fault{Status: 502, Times: 3})
		c, sl := newClient(t, s, nil)
		if _, err := c.List(ctx, vapiapi.Tool); err != nil {
			t.Fatal(err)
		}
		// 250ms, 500ms, 1s, each spread over its upper half at jitter 0.5.
		want := []time.Duration{187500 * time.Microsecond, 375 * time.Millisecond, 750 * time.Millisecond}
		if got := sl.got(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("waits %v, want %v", got, want)
		}
	})
	t.Run("GivesUpWithVapisStatus", func(t *testing.T) {
		s := vapitest.New(t)
		s.Inject(vapitest.Fault{Status: 429, RetryAfter: "1", Times: 10})
		c, sl := newClient(t, s, nil)
		_, err := c.Get(ctx, vapiapi.Assistant, "a1")
		var ve *vapiapi.Error
		if !errors.As(err, &ve) || ve.Status != 429 || ve.Message != "injected failure" || len(sl.got()) != 3 {
			t.Fatalf("err %v, waits %v", err, sl.got())
		}
	})
	t.Run("CreateNotRepeatedAfterA500", func(t *testing.T) {
		s := vapitest.New(t)
		s.Inject(vapitest.Fault{Method: "POST", Status: 500})
		c, sl := newClient(t, s, nil)
		_, err := c.Create(ctx, vapiapi.Assistant, vapiapi.Resource{"name": "x"})
		if statusOf(err) != 500 || len(sl.got()) != 0 || s.Mutations() != 1 {
			t.Fatalf("err %v, waits %v, mutations %d", err, sl.got(), s.Mutations())
		}
		s.Inject(vapitest.Fault{Method: "POST", Status: 503, RetryAfter: "1"})
		if _, err := c.Create(ctx, vapiapi.Assistant, vapiapi.Resource{"name": "x"}); err != nil {
			t.Fatalf("a 503 (not acted on) is retried: %v", err)
		}
		if len(s.All(vapiapi.Assistant)) != 1 {
			t.Fatal("created twice")
		}
	})
	t.Run("BoundedByTheContext", func(t *testing.T) {
		s := vapitest.New(t)
		s.Inject(vapitest.Fault{Status: 429, RetryAfter: "30"})
		c, sl := newClient(t, s, nil)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.List(dctx, vapiapi.Tool)
		if statusOf(err) != 429 || len(sl.got()) != 0 {
			t.Fatalf("a wait past the deadline: err %v, waits %v", err, sl.got())
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		sl := &sleeps{}
		c, err := vapiapi.New(config("http://"+addr, "k-123456"), vapiapi.Options{Sleep: sl.sleep})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Create(ctx, vapiapi.Tool, vapiapi.Resource{"type": "function"})
		var ve *vapiapi.Error
		if !errors.As(err, &ve) || ve.Status != 0 || len(sl.got()) != 3 {
			t.Fatalf("a connection never made is retried, even for a create: %v, waits %v", err, sl.got())
		}
	})
}

func statusOf(err error) int {
	var ve *vapiapi.Error
	if errors.As(err, &ve) {
		return ve.Status
	}
	return -1
}

// TestErrorsShowVapisMessageNeverTheKey: Vapi's message (a string or a
// list) is in the error, on one line and truncated; the key is in no
// error and no log line, even when an answer echoes it.
func TestErrorsShowVapisMessageNeverTheKey(t *testing.T) {
	ctx := t.Context()
	s := vapitest.New(t)
	var logs bytes.Buffer
	c, _ := newClient(t, s, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var errs []error

	_, err := c.Create(ctx, vapiapi.Tool, vapiapi.Resource{"function": map[string]any{"name": "bad name!"}})
	var ve *vapiapi.Error
	if !errors.As(err, &ve) || ve.Status != 400 || ve.Message != "type must be a string" {
		t.Fatalf("err %#v", err)
	}
	errs = append(errs, err)
	_, err = c.Create(ctx, vapiapi.StructuredOutput, vapiapi.Resource{})
	if !errors.As(err, &ve) || ve.Message != "name must be a string; schema must be an object" {
		t.Fatalf("a list message: %v", err)
	}
	errs = append(errs, err)
	_, err = c.Get(ctx, vapiapi.Assistant, "nope")
	if !errors.Is(err, vapiapi.ErrNotFound) || !strings.Contains(err.Error(), "404 Not Found: Assistant not found") {
		t.Fatalf("404: %v", err)
	}
	errs = append(errs, err)
	if err := c.Delete(ctx, vapiapi.Squad, "nope"); !errors.Is(err, vapiapi.ErrNotFound) {
		t.Fatalf("delete 404: %v", err)
	}
	s.Inject(vapitest.Fault{Status: 503, Times: 5})
	_, err = c.List(ctx, vapiapi.Tool)
	errs = append(errs, err)

	bad, _ := vapiapi.New(config(s.URL, "wrong-key-0000"), vapiapi.Options{})
	_, err = bad.List(ctx, vapiapi.Tool)
	if statusOf(err) != 401 || !strings.Contains(err.Error(), "Invalid Key") {
		t.Fatalf("401: %v", err)
	}

	// An answer that echoes the key, over several lines and long.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"message": "bad header %s\nsecond line %s", "statusCode": 400}`, r.Header.Get("Authorization"), strings.Repeat("x", 500))
	}))
	defer echo.Close()
	ec, _ := vapiapi.New(config(echo.URL, s.Key), vapiapi.Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err = ec.Get(ctx, vapiapi.Tool, "t1")
	if !errors.As(err, &ve) || strings.ContainsAny(ve.Message, "\n\r") || len(ve.Message) > 310 || !strings.Contains(ve.Message, "bad header Bearer <redacted> second line xxx") {
		t.Fatalf("echo: %q", err)
	}
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil || strings.Contains(e.Error(), s.Key) {
			t.Fatalf("error %v", e)
		}
	}
	if logs.Len() == 0 || strings.Contains(logs.String(), s.Key) {
		t.Fatalf("logs: %s", logs.String())
	}
}

// TestOnlyTheBaseURLIsCalled: a redirect is not followed; an id cannot
// reach another path.
func TestOnlyTheBaseURLIsCalled(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/assistant", http.StatusFound)
	}))
	defer redirect.Close()
	c, _ := vapiapi.New(config(redirect.URL, "k-0123456789"), vapiapi.Options{})
	_, err := c.List(t.Context(), vapiapi.Assistant)
	if statusOf(err) != 302 || elsewhere != 0 {
		t.Fatalf("err %v, other server asked %d times", err, elsewhere)
	}
	for _, id := range []string{"", "..", "a/b", "a?b", "a%2F", "a\nb", `a\b`} {
		if _, err := c.Get(t.Context(), vapiapi.Assistant, id); err == nil || !strings.Contains(err.Error(), "is not a assistant id") {
			t.Fatalf("id %q: %v", id, err)
		}
	}
}

// TestModifyKeepsWhatItDoesNotTouch: a read-modify-write of
// server.credentialId sends only "server", whole, and keeps every other
// field — model.temperature, unknown fields, exact numbers.
func TestModifyKeepsWhatItDoesNotTouch(t *testing.T) {
	s := vapitest.New(t)
	a := s.Put(vapiapi.Assistant, vapiapi.Resource{
		"name":               "Support",
		"model":              map[string]any{"provider": "openai", "model": "gpt-4o", "temperature": json.Number("0.7"), "messages": []any{map[string]any{"role": "system", "content": "hi"}}},
		"server":             map[string]any{"url": "https://gw.example.com/webhook/vapi", "timeoutSeconds": json.Number("20"), "backoffPlan": map[string]any{"type": "fixed", "maxRetries": json.Number("3")}},
		"aFutureField":       map[string]any{"nested": map[string]any{"deep": true}},
		"maxDurationSeconds": json.Number("1800.50"),
		"bigNumber":          json.Number("123456789012345678901234567890"),
	})
	c, _ := newClient(t, s, nil)
	s.ResetCounts()
	got, changed, err := c.Modify(t.Context(), vapiapi.Assistant, a.ID(), func(r vapiapi.Resource) error {
		r.Set("server.credentialId", "cred-1")
		return nil
	})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	stored, _ := s.Get(vapiapi.Assistant, a.ID())
	for path, want := range map[string]any{
		"model.temperature": json.Number("0.7"), "aFutureField.nested.deep": true, "server.timeoutSeconds": json.Number("20"),
		"server.backoffPlan.maxRetries": json.Number("3"), "server.credentialId": "cred-1", "maxDurationSeconds": json.Number("1800.50"),
		"bigNumber": json.Number("123456789012345678901234567890"),
	} {
		if v, _ := stored.Lookup(path); v != want {
			t.Errorf("%s = %#v, want %#v", path, v, want)
		}
	}
	if !vapiapi.Equal(got, stored) {
		t.Error("the answer is not what is stored")
	}
	if reqs := s.Requests(); len(reqs) != 2 || reqs[1].Method != "PATCH" {
		t.Fatalf("requests %+v", reqs)
	}
	// Nothing to change: no patch.
	s.ResetCounts()
	if _, changed, err := c.Modify(t.Context(), vapiapi.Assistant, a.ID(), func(r vapiapi.Resource) error {
		r.Set("server.credentialId", "cred-1")
		return nil
	}); changed || err != nil || s.Mutations() != 0 {
		t.Fatalf("no-op modify: %v %v %d", changed, err, s.Mutations())
	}
}

func TestTopLevelPatch(t *testing.T) {
	before := vapiapi.Resource{"id": "x", "provider": "twilio", "name": "a", "server": map[string]any{"url": "u", "timeoutSeconds": json.Number("20")}, "gone": "y"}
	after := before.Clone()
	after.Set("server.timeoutSeconds", json.Number("20.0"))
	if p := vapiapi.TopLevelPatch(vapiapi.PhoneNumber, before, after); len(p) != 0 {
		t.Fatalf("20 and 20.0 are equal: %v", p)
	}
	after.Set("server.credentialId", "c")
	delete(after, "gone")
	after["updatedAt"] = "now"
	p := vapiapi.TopLevelPatch(vapiapi.PhoneNumber, before, after)
	if len(p) != 3 || p["provider"] != "twilio" || p["gone"] != nil || p["server"].(map[string]any)["url"] != "u" {
		t.Fatalf("patch %v", p)
	}
}

func TestURLs(t *testing.T) {
	if got := vapiapi.WebhookURL("https://gw.example.com", "/webhook/vapi"); got != "https://gw.example.com/webhook/vapi" {
		t.Fatal(got)
	}
	if got := vapiapi.WebhookURL("https://gw.example.com/hooks/v", "/webhook/vapi"); got != "https://gw.example.com/hooks/v" {
		t.Fatal(got)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://GW.example.com:443/webhook/vapi/", "https://gw.example.com/webhook/vapi", true},
		{"https://gw.example.com/webhook/vapi", "http://gw.example.com/webhook/vapi", false},
		{"https://gw.example.com/webhook/vapi", "https://gw.example.com/webhook/other", false},
		{"", "", false},
	} {
		if vapiapi.SameURL(tc.a, tc.b) != tc.same {
			t.Errorf("SameURL(%q, %q) != %v", tc.a, tc.b, tc.same)
		}
	}
}
