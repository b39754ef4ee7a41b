package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/ratelimit"
)

// postFrom posts a signed body with an X-Forwarded-For header (empty: none)
// and returns the status and the Retry-After header.
func (e *env) postFrom(body, xff string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	for k, v := range e.signed(body) {
		req.Header[k] = v
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestRateLimitPerSource: each client address has its own bucket, checked
// before anything is read; a refused request is a 429 with Retry-After and
// is not handled. Behind a trusted proxy the forwarded address is the
// client; from anyone else X-Forwarded-For changes nothing.
func TestRateLimitPerSource(t *testing.T) {
	slow := ratelimit.Rate{PerSecond: 0.001, Burst: 2} // a token every 1000 s
	for _, c := range []struct {
		name    string
		trusted []string
		// the clients of requests 1..4, as X-Forwarded-For
		xff  []string
		want []int
	}{
		{"one client", nil, []string{"", "", "", ""}, []int{200, 200, 429, 429}},
		{"spoofed header from an untrusted peer", nil, []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"}, []int{200, 200, 429, 429}},
		{"clients behind a trusted proxy", []string{"127.0.0.1"}, []string{"198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"}, []int{200, 200, 429, 200}},
		{"spoofed left-most hop behind a trusted proxy", []string{"127.0.0.1"}, []string{"1.1.1.1, 198.51.100.1", "2.2.2.2, 198.51.100.1", "3.3.3.3, 198.51.100.1", "4.4.4.4, 198.51.100.1"}, []int{200, 200, 429, 429}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *config.Config) {
				cfg.Limits.PerSource = slow
				cfg.Server.TrustedProxies = c.trusted
			})
			for i, xff := range c.xff {
				call := fmt.Sprintf("RL%d", i)
				status, retry := e.postFrom(msg("status-update", call, `"status":"in-progress"`), xff)
				if status != c.want[i] {
					t.Fatalf("request %d from %q: %d, want %d", i+1, xff, status, c.want[i])
				}
				if status == 429 && retry != "1000" {
					t.Fatalf("Retry-After %q, want 1000 (seconds to the next token)", retry)
				}
				if _, _, err := e.app.Store.Call(context.Background(), call); (err == nil) != (status == 200) {
					t.Fatalf("request %d answered %d, stored: %v", i+1, status, err)
				}
			}
			if got := e.metric(`voicegate_requests_total{outcome="rate_limited",source="vapi",type="none"}`); got == "" || got == "0" {
				t.Fatalf("rate_limited not counted: %q", got)
			}
		})
	}
}

// TestRateLimitPerRoute: the route's bucket holds whatever the client.
func TestRateLimitPerRoute(t *testing.T) {
	e := newEnv(t, func(cfg *config.Config) {
		cfg.Limits.PerRoute = ratelimit.Rate{PerSecond: 0.001, Burst: 3}
		cfg.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	for i := range 4 {
		status, _ := e.postFrom(msg("status-update", fmt.Sprintf("RR%d", i), `"status":"in-progress"`), fmt.Sprintf("198.51.100.%d", i+1))
		if want := map[bool]int{true: 200, false: 429}[i < 3]; status != want {
			t.Fatalf("request %d: %d, want %d", i+1, status, want)
		}
	}
	// Health and readiness are not webhook routes: never limited.
	for range 5 {
		resp, err := http.Get(e.srv.URL + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("readyz: %v %v", resp, err)
		}
		resp.Body.Close()
	}
}

// TestInFlightCap: past limits.max_in_flight requests being served, the
// next is a 503 with Retry-After, while readiness stays green (a load
// balancer must not take the instance out and push the load onto others).
func TestInFlightCap(t *testing.T) {
	e := newEnv(t, func(cfg *config.Config) { cfg.Limits.MaxInFlight = 2 })
	e.apiDelay.Store(int64(2 * time.Second))
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			e.postFrom(msg("tool-calls", fmt.Sprintf("IF%d", i), `"toolCallList":[{"id":"if`+fmt.Sprint(i)+`","name":"getAppointment","arguments":{}}]`), "")
		})
	}
	for deadline := time.Now().Add(5 * time.Second); e.app.Gateway.InFlight() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow tool calls never got in flight")
		}
	}
	status, retry := e.postFrom(msg("status-update", "IF9", `"status":"in-progress"`), "")
	if status != 503 || retry != "1" {
		t.Fatalf("over the cap: %d Retry-After %q, want 503 and 1", status, retry)
	}
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readiness while shedding load: %v %v", resp, err)
	}
	resp.Body.Close()
	e.apiDelay.Store(0)
	wg.Wait()
	if status, _ := e.postFrom(msg("status-update", "IF9", `"status":"in-progress"`), ""); status != 200 {
		t.Fatalf("after the load went: %d", status)
	}
}

// TestSourceAllowlist: a route's allow_from is checked first, on the
// socket's address — or behind a trusted proxy the forwarded one; a
// spoofed X-Forwarded-For from anyone else changes nothing. Refused: 403,
// nothing read, counted as forbidden.
func TestSourceAllowlist(t *testing.T) {
	for _, c := range []struct {
		name    string
		allow   []string
		trusted []string
		xff     string
		want    int
	}{
		{"loopback not in the list", []string{"vapi-webhooks"}, nil, "", 403},
		{"spoofed header from an untrusted peer", []string{"vapi-webhooks"}, nil, "167.150.224.10", 403},
		{"loopback in the list", []string{"10.0.0.0/8", "127.0.0.1"}, nil, "", 200},
		{"forwarded by a trusted proxy, in the list", []string{"vapi-webhooks"}, []string{"127.0.0.1"}, "167.150.224.10", 200},
		{"forwarded by a trusted proxy, not in the list", []string{"vapi-webhooks"}, []string{"127.0.0.1"}, "198.51.100.7", 403},
		{"spoofed left-most hop behind a trusted proxy", []string{"vapi-webhooks"}, []string{"127.0.0.1"}, "167.150.224.10, 198.51.100.7", 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *config.Config) {
				cfg.Vapi.AllowFrom = c.allow
				cfg.Server.TrustedProxies = c.trusted
			})
			call := "AL-" + strings.ReplaceAll(c.name, " ", "-")
			status, _ := e.postFrom(msg("status-update", call, `"status":"in-progress"`), c.xff)
			if status != c.want {
				t.Fatalf("%d, want %d", status, c.want)
			}
			if _, _, err := e.app.Store.Call(context.Background(), call); (err == nil) != (status == 200) {
				t.Fatalf("answered %d, stored: %v", status, err)
			}
			if c.want == 403 && e.metric(`voicegate_requests_total{outcome="forbidden",source="vapi",type="none"}`) != "1" {
				t.Fatal("the refusal is not counted as forbidden")
			}
		})
	}
}
