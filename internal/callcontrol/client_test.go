package callcontrol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

func TestBearerKey(t *testing.T) {
	srv := newControlServer(t, nil)
	cfg := testConfig(srv)
	plain := mustNew(t, cfg, Deps{})
	cfg.BearerKey = testKey
	keyed := mustNew(t, cfg, Deps{})
	if _, err := plain.Send(t.Context(), srv.controlURL(), EndCall()); err != nil {
		t.Fatal(err)
	}
	if _, err := keyed.Send(t.Context(), srv.controlURL(), EndCall()); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if reqs[0].hasAuth {
		t.Errorf("without a key, Authorization = %q, want none", reqs[0].auth)
	}
	if reqs[1].auth != "Bearer "+testKey {
		t.Errorf("with a key, Authorization = %q, want Bearer <key>", reqs[1].auth)
	}
}

// status answers each request with the next status (the last one
// repeated), setting Retry-After when retryAfter is not empty and an
// optional body.
func status(retryAfter, body string, codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		code := codes[min(n, len(codes))-1]
		if code == http.StatusTooManyRequests && retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

type observed struct {
	typ, outcome string
	attempts     int
}

type observer struct {
	mu  sync.Mutex
	got []observed
}

func (o *observer) observe(typ, outcome string, attempts int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{typ, outcome, attempts})
}

func TestRetries(t *testing.T) {
	say := must(Say("Your table is booked.", false))
	mute := must(Control(MuteAssistant))
	tests := []struct {
		name         string
		handle       func(int, http.ResponseWriter, *http.Request)
		msg          Message
		wantOutcome  Outcome
		wantAttempts int
		wantStatus   int
		wantSleeps   []time.Duration // nil: not checked
		wantErr      string
	}{
		{"503 then 200", status("", "", 503, 200), say, OutcomeOK, 2, 200, nil, ""},
		{"503 every time", status("", "", 503), say, OutcomeHTTPError, 3, 503, nil, "status 503 after 3 attempts"},
		{"429 with Retry-After then 200", status("1", "", 429, 200), say, OutcomeOK, 2, 200, []time.Duration{time.Second}, ""},
		{"429 with a Retry-After date", status(time.Date(2026, 1, 1, 12, 0, 2, 0, time.UTC).Format(http.TimeFormat), "", 429, 200), say, OutcomeOK, 2, 200, []time.Duration{2 * time.Second}, ""},
		{"429 with Retry-After over the cap", status("60", `{"message":"slow down"}`, 429, 200), say, OutcomeRateLimited, 1, 429, []time.Duration{}, "rate limited (status 429) (Retry-After 1m0s is over 2s) after 1 attempt"},
		{"429 every time", status("", "", 429), say, OutcomeRateLimited, 3, 429, nil, "rate limited (status 429) after 3 attempts"},
		{"502: say not retried", status("", "", 502, 200), say, OutcomeHTTPError, 1, 502, []time.Duration{}, "status 502 after 1 attempt"},
		{"502: control retried", status("", "", 502, 200), mute, OutcomeOK, 2, 200, nil, ""},
		{"504: say not retried", status("", "", 504, 200), say, OutcomeHTTPError, 1, 504, nil, ""},
		{"504: end-call retried", status("", "", 504, 200), EndCall(), OutcomeOK, 2, 200, nil, ""},
		{"500 not retried", status("", "oops", 500, 200), mute, OutcomeHTTPError, 1, 500, []time.Duration{}, "status 500 after 1 attempt"},
		{"400 not retried", status("", `{"message":["content must be a string"],"error":"Bad Request","statusCode":400}`, 400, 200), mute, OutcomeHTTPError, 1, 400, []time.Duration{},
			`call control control to 127.0.0.1:PORT: status 400 after 1 attempt`},
		{"404 not retried", status("", "Not Found\n", 404, 200), EndCall(), OutcomeHTTPError, 1, 404, nil, "status 404 after 1 attempt"},
		{"redirect not followed", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, mute, OutcomeHTTPError, 1, 307, []time.Duration{}, "status 307 (redirect not followed) after 1 attempt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newControlServer(t, tc.handle)
			var sl sleeps
			var obs observer
			now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			c := mustNew(t, testConfig(srv), Deps{Sleep: sl.sleep, Observe: obs.observe, Now: func() time.Time { return now }})
			res, err := c.Send(t.Context(), srv.controlURL(), tc.msg)
			if res.Outcome != tc.wantOutcome || res.Attempts != tc.wantAttempts || res.Status != tc.wantStatus {
				t.Errorf("result = %+v, want %s after %d attempts, status %d", res, tc.wantOutcome, tc.wantAttempts, tc.wantStatus)
			}
			if n := len(srv.requests()); n != tc.wantAttempts {
				t.Errorf("server got %d requests, want %d", n, tc.wantAttempts)
			}
			for i, r := range srv.requests() {
				if r.path != "/"+callID+"/control" {
					t.Errorf("request %d went to %s", i+1, r.path)
				}
			}
			if tc.wantSleeps != nil && !reflect.DeepEqual(sl.got(), tc.wantSleeps) && (len(tc.wantSleeps) > 0 || len(sl.got()) > 0) {
				t.Errorf("waits = %v, want %v", sl.got(), tc.wantSleeps)
			}
			want := observed{tc.msg.Type(), string(tc.wantOutcome), tc.wantAttempts}
			if len(obs.got) != 1 || obs.got[0] != want {
				t.Errorf("observed %v, want [%v]", obs.got, want)
			}
			if tc.wantOutcome == OutcomeOK {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Outcome != tc.wantOutcome || e.Status != tc.wantStatus || e.Attempts != tc.wantAttempts || e.Host != srv.hostPort() {
				t.Errorf("error = %+v", e)
			}
			got := strings.ReplaceAll(err.Error(), srv.hostPort(), "127.0.0.1:PORT")
			if !strings.HasSuffix(got, tc.wantErr) {
				t.Errorf("err = %q, want it to end with %q (Vapi's answer is never quoted: it may echo the content)", got, tc.wantErr)
			}
		})
	}
}

// TestBackoff: Backoff doubled before each retry, jittered between half
// and all of it by the injected source.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		rand float64
		want []time.Duration
	}{
		{0, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}},
		{0.5, []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}},
		{0.999, []time.Duration{99950 * time.Microsecond, 199900 * time.Microsecond, 399800 * time.Microsecond}},
	} {
		srv := newControlServer(t, status("", "", 503))
		var sl sleeps
		cfg := testConfig(srv)
		cfg.Backoff, cfg.Retries = confval.Duration(100*time.Millisecond), ptr(3)
		c := mustNew(t, cfg, Deps{Sleep: sl.sleep, Rand: func() float64 { return tc.rand }})
		res, _ := c.Send(t.Context(), srv.controlURL(), EndCall())
		if res.Attempts != 4 || !reflect.DeepEqual(sl.got(), tc.want) {
			t.Errorf("rand %v: %d attempts, waits %v, want 4 and %v", tc.rand, res.Attempts, sl.got(), tc.want)
		}
	}
}

// hang answers the requests numbered in hangs only once the client has
// gone (its timeout), the others with 200.
func hang(hangs ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		for _, h := range hangs {
			if h == n || h == 0 {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
				return
			}
		}
		io.WriteString(w, "{}")
	}
}

// TestTimeoutRetriesOnlyIdempotent: after a timeout Vapi may have acted, so
// a say is not sent again (it would be spoken twice); a mute is.
func TestTimeoutRetriesOnlyIdempotent(t *testing.T) {
	for _, tc := range []struct {
		msg          Message
		wantOutcome  Outcome
		wantAttempts int
	}{
		{must(Say("Please hold.", false)), OutcomeTimeout, 1},
		{must(AddMessage(RoleSystem, "The caller is a VIP.", true)), OutcomeTimeout, 1},
		{must(Transfer(json.RawMessage(`{"type":"number","number":"+1234567890"}`), "")), OutcomeTimeout, 1},
		{must(Control(MuteAssistant)), OutcomeOK, 2},
		{EndCall(), OutcomeOK, 2},
	} {
		t.Run(tc.msg.Type(), func(t *testing.T) {
			srv := newControlServer(t, hang(1))
			cfg := testConfig(srv)
			cfg.Timeout = confval.Duration(100 * time.Millisecond)
			c := mustNew(t, cfg, Deps{})
			res, err := c.Send(t.Context(), srv.controlURL(), tc.msg)
			if res.Outcome != tc.wantOutcome || res.Attempts != tc.wantAttempts {
				t.Errorf("result = %+v (err %v), want %s after %d attempts", res, err, tc.wantOutcome, tc.wantAttempts)
			}
			if n := len(srv.requests()); n != tc.wantAttempts {
				t.Errorf("server got %d requests, want %d", n, tc.wantAttempts)
			}
			if tc.wantOutcome == OutcomeTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want DeadlineExceeded", err)
			}
		})
	}
}

// TestConnectionLostRetriesOnlyIdempotent: the connection closes after the
// request was read, with no answer: Vapi may have acted.
func TestConnectionLostRetriesOnlyIdempotent(t *testing.T) {
	drop := func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "{}")
	}
	for _, tc := range []struct {
		msg          Message
		wantOutcome  Outcome
		wantAttempts int
	}{
		{must(Say("Please hold.", false)), OutcomeUnreachable, 1},
		{must(Control(UnmuteCustomer)), OutcomeOK, 2},
	} {
		srv := newControlServer(t, drop)
		c := mustNew(t, testConfig(srv), Deps{Sleep: (&sleeps{}).sleep})
		res, err := c.Send(t.Context(), srv.controlURL(), tc.msg)
		if res.Outcome != tc.wantOutcome || res.Attempts != tc.wantAttempts || len(srv.requests()) != tc.wantAttempts {
			t.Errorf("%s: result = %+v (err %v), server got %d; want %s after %d attempts", tc.msg.Type(), res, err, len(srv.requests()), tc.wantOutcome, tc.wantAttempts)
		}
		if err != nil && !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("err = %q, want connection reset", err)
		}
	}
}

// TestRefusedConnectionRetried: nothing listens, so no request reached
// Vapi: even a say is retried.
func TestRefusedConnectionRetried(t *testing.T) {
	srv := newControlServer(t, nil)
	cfg := testConfig(srv)
	u := srv.controlURL()
	srv.Close()
	var sl sleeps
	c := mustNew(t, cfg, Deps{Sleep: sl.sleep})
	res, err := c.Send(t.Context(), u, must(Say("Hello.", false)))
	if res.Outcome != OutcomeUnreachable || res.Attempts != 3 || res.Status != 0 || len(sl.got()) != 2 {
		t.Errorf("result = %+v, waits %v; want unreachable after 3 attempts, 2 waits", res, sl.got())
	}
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), callID) {
		t.Errorf("err = %v", err)
	}
}

// TestTimeoutBounded: a control endpoint that never answers costs at most
// (retries+1) × timeout plus the waits.
func TestTimeoutBounded(t *testing.T) {
	srv := newControlServer(t, hang(0))
	cfg := testConfig(srv)
	cfg.Timeout = confval.Duration(100 * time.Millisecond)
	c := mustNew(t, cfg, Deps{})
	start := time.Now()
	res, err := c.Send(t.Context(), srv.controlURL(), EndCall())
	took := time.Since(start)
	if res.Outcome != OutcomeTimeout || res.Attempts != 3 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("result = %+v, err %v; want timeout after 3 attempts", res, err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("Send took %s, want about 300ms", took)
	}
	if res.Duration < 300*time.Millisecond || res.Duration > took {
		t.Errorf("Duration = %s, took %s", res.Duration, took)
	}
}

func TestContextEndsRetries(t *testing.T) {
	t.Run("cancelled while waiting to retry", func(t *testing.T) {
		srv := newControlServer(t, status("", "", 503))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sleep := func(ctx context.Context, d time.Duration) error {
			cancel() // the call ended meanwhile
			<-ctx.Done()
			return ctx.Err()
		}
		c := mustNew(t, testConfig(srv), Deps{Sleep: sleep})
		res, err := c.Send(ctx, srv.controlURL(), EndCall())
		if res.Attempts != 1 || len(srv.requests()) != 1 || !errors.Is(err, context.Canceled) {
			t.Errorf("result = %+v, err %v, server got %d; want 1 attempt, Canceled", res, err, len(srv.requests()))
		}
	})
	// Whether the 503 or the cancellation reaches the client first, no
	// second request is made, even with a Sleep that ignores ctx.
	t.Run("cancelled while Vapi answers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		srv := newControlServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			cancel() // the call ended while Vapi answered
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		c := mustNew(t, testConfig(srv), Deps{Sleep: func(context.Context, time.Duration) error { return nil }})
		res, _ := c.Send(ctx, srv.controlURL(), EndCall())
		if res.Attempts != 1 || len(srv.requests()) != 1 {
			t.Errorf("result = %+v, server got %d; want 1 attempt", res, len(srv.requests()))
		}
	})
	t.Run("cancelled during the request", func(t *testing.T) {
		srv := newControlServer(t, hang(0))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		c := mustNew(t, testConfig(srv), Deps{})
		start := time.Now()
		res, err := c.Send(ctx, srv.controlURL(), must(Control(MuteAssistant))) // idempotent, yet not retried
		if res.Outcome != OutcomeTimeout || res.Attempts != 1 || !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
			t.Errorf("result = %+v, err %v after %s; want timeout, 1 attempt, Canceled", res, err, time.Since(start))
		}
	})
	t.Run("deadline shorter than the timeout", func(t *testing.T) {
		srv := newControlServer(t, hang(0))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		c := mustNew(t, testConfig(srv), Deps{})
		res, err := c.Send(ctx, srv.controlURL(), EndCall())
		if res.Outcome != OutcomeTimeout || res.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("result = %+v, err %v; want timeout, 1 attempt", res, err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		srv := newControlServer(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := mustNew(t, testConfig(srv), Deps{})
		res, err := c.Send(ctx, srv.controlURL(), EndCall())
		if res.Attempts != 1 || len(srv.requests()) != 0 || !errors.Is(err, context.Canceled) {
			t.Errorf("result = %+v, err %v, server got %d", res, err, len(srv.requests()))
		}
	})
}

func TestRefusedURLSendsNothing(t *testing.T) {
	srv := newControlServer(t, nil)
	var obs observer
	c := mustNew(t, testConfig(srv), Deps{Observe: obs.observe})
	// The same server under a name that is not listed.
	_, port, _ := net.SplitHostPort(srv.hostPort())
	res, err := c.Send(t.Context(), "http://localhost:"+port+"/"+callID+"/control", EndCall())
	if res.Outcome != OutcomeRefusedURL || res.Attempts != 0 || !errors.Is(err, ErrURLRefused) || len(srv.requests()) != 0 {
		t.Errorf("result = %+v, err %v, server got %d", res, err, len(srv.requests()))
	}
	if len(obs.got) != 1 || obs.got[0] != (observed{"end-call", "refused_url", 0}) {
		t.Errorf("observed %v", obs.got)
	}
}

// TestExcerpt: Vapi's answer is quoted on one line, at most 200 bytes,
// without the URL's path segments (the call id) or the key.
func TestExcerpt(t *testing.T) {
	secrets := []string{callID, "control", testKey}
	for _, tc := range []struct {
		name, body string
		full       bool
		want       string
	}{
		{"plain", `{"message":"bad"}`, true, `{"message":"bad"}`},
		{"lines and controls", "line one\r\n\tline\x00two\x1b[31m \u2028three", true, "line one line two [31m three"},
		{"invalid UTF-8", "a\xffb", true, "a?b"},
		{"call id", "Call " + callID + " not found", true, "Call *** not found"},
		{"key", "invalid key " + testKey, true, "invalid key ***"},
		{"long", strings.Repeat("é", 150), true, strings.Repeat("é", 100)},
		{"cut inside the call id", strings.Repeat("x", 80) + " call " + callID[:20], false, strings.Repeat("x", 80) + " call "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := excerpt([]byte(tc.body), tc.full, secrets)
			if got != tc.want {
				t.Errorf("excerpt = %q, want %q", got, tc.want)
			}
			if len(got) > excerptBytes {
				t.Errorf("excerpt is %d bytes", len(got))
			}
		})
	}
}

// TestNothingSecretLogged sends messages that succeed, fail, time out and
// are refused, and checks that neither the logs nor the errors hold the
// call id (the URL's path), the content or the key, while the logs still
// say what happened.
func TestNothingSecretLogged(t *testing.T) {
	const content = "Mrs Jane Roe, born 1970-01-02, card 4111 1111 1111 1111"
	srv := newControlServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			io.WriteString(w, "{}")
		case 2:
			// Vapi echoing what it got.
			body, _ := json.Marshal(map[string]string{"message": "call " + callID + " rejected " + r.URL.Path, "auth": r.Header.Get("Authorization")})
			w.WriteHeader(http.StatusBadRequest)
			w.Write(body)
		case 3:
			http.Redirect(w, r, r.URL.Path+"?again", http.StatusFound)
		default:
			<-r.Context().Done()
		}
	})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(srv)
	cfg.BearerKey = testKey
	cfg.Timeout = confval.Duration(100 * time.Millisecond)
	c := mustNew(t, cfg, Deps{Log: log})
	say := must(Say(content, false))
	var errs []string
	for _, u := range []string{
		srv.controlURL(), srv.controlURL(), srv.controlURL(), srv.controlURL(), // ok, 400, redirect, timeout
		"https://user:" + testKey + "@evil.example/" + callID + "/control",
		"https://evil.example/" + callID + "/control",
		"http://x.vapi.ai/" + callID + "/control",
		"::" + callID,
	} {
		if _, err := c.Send(t.Context(), u, say); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 7 {
		t.Fatalf("%d errors, want 7: %q", len(errs), errs)
	}
	out := logs.String() + strings.Join(errs, "\n")
	for _, secret := range []string{callID, "7420f27a", "Jane", "4111", testKey, "3c9a1f7e"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q leaked:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"type":"say"`, `"addr":"` + srv.hostPort() + `"`, `"outcome":"ok"`, `"outcome":"http_error"`, `"status":400`, `"outcome":"timeout"`, `"outcome":"refused_url"`, `"attempts":1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(errs[0], "rejected") {
		t.Errorf("400 error = %q quotes Vapi's answer, which may echo the message's content", errs[0])
	}
}
