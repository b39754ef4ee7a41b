package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/gateway"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/webhook"
)

// xmlSource is a second provider, shaped like Twilio: XML answers and a
// replay key taken from an idempotency header instead of the body.
type xmlSource struct{ ep *webhook.Endpoint }

func (s *xmlSource) Name() string                { return "xml" }
func (s *xmlSource) Path() string                { return "/webhook/xml" }
func (s *xmlSource) Types() []string             { return []string{"voice", "none"} }
func (s *xmlSource) Endpoint() *webhook.Endpoint { return s.ep }

// TestSecondSourceNeedsNoGatewayChange: a provider is a value handed to the
// gateway; nothing in the gateway knows Vapi. Its replay key, content type
// and handling are the source's own; authentication, the body budget and
// replay refusal are the gateway's.
func TestSecondSourceNeedsNoGatewayChange(t *testing.T) {
	e := newEnv(t, nil) // configuration, signer and store of a real stack
	verifier, err := auth.New(e.app.Config.Vapi.Auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	src := &xmlSource{ep: &webhook.Endpoint{
		MaxBodyBytes: 4096,
		Verifier:     verifier,
		ReplayKey: func(r *http.Request, _ []byte) replay.Key {
			return replay.KeyOf([]byte(r.Header.Get("I-Twilio-Idempotency-Token")))
		},
		Handle: func(_ context.Context, body []byte) (webhook.Reply, error) {
			handled.Add(1)
			switch {
			case strings.Contains(string(body), "Bad=1"):
				return webhook.Reply{}, webhook.BadRequest("no such field", nil)
			case strings.Contains(string(body), "Crash=1"):
				return webhook.Reply{}, errors.New("database said: secret detail")
			case strings.Contains(string(body), "Panic=1"):
				panic("handler bug")
			case strings.Contains(string(body), "NoStatus=1"):
				return webhook.Reply{}, &webhook.Error{Msg: "a source bug: no status"}
			}
			return webhook.Reply{Status: 200, Body: []byte("<Response><Say>Hello</Say></Response>"), ContentType: "text/xml", Type: "voice", Deadline: 15 * time.Second}, nil
		},
		EncodeError: func(status int, msg string) (string, []byte) {
			return "text/plain", []byte(fmt.Sprintf("refused %d: %s", status, msg))
		},
		SlowRatio: 0.5,
	}}
	zero := func() float64 { return 0 }
	g := gateway.New(gateway.Config{BodyMemoryBytes: 1 << 20, ReadTimeout: 15 * time.Second}, gateway.Deps{Sources: []webhook.Source{src}, Replay: replay.New(time.Minute, 100),
		Store: e.app.Store, Metrics: metrics.New(zero, zero, zero), Log: slog.New(slog.DiscardHandler), Now: time.Now})
	srv := httptest.NewServer(g)
	defer srv.Close()
	post := func(body, token string, signed bool) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+src.Path(), strings.NewReader(body))
		if signed {
			req.Header = e.signed(body)
		}
		req.Header.Set("I-Twilio-Idempotency-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, b := post("CallSid=CA1&From=x", "T1", true); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" || !strings.HasPrefix(b, "<Response>") {
		t.Fatalf("first delivery: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// A redelivery with the same token is a replay even though its body
	// differs; the stored answer keeps its content type.
	if resp, b := post("CallSid=CA1&From=x&Retry=1", "T1", true); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" || !strings.HasPrefix(b, "<Response>") {
		t.Fatalf("redelivery: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("handled %d times, want 1 (the redelivery is answered from the replay cache)", n)
	}
	// Refusals, the source's errors and anything else it returns are all
	// rendered by the source's EncodeError; an unknown error tells nothing.
	for _, c := range []struct {
		body, token string
		signed      bool
		status      int
		answer      string
	}{
		{"CallSid=CA2", "T2", false, 401, "refused 401: unauthorized"},
		{"CallSid=CA3&Bad=1", "T3", true, 400, "refused 400: no such field"},
		{"CallSid=CA4&Crash=1", "T4", true, 500, "refused 500: internal error"},
		// A panic in the handler is an error like any other: the source's
		// format, counted, and the delivery not remembered.
		{"CallSid=CA5&Panic=1", "T5", true, 500, "refused 500: internal error"},
		{"CallSid=CA5&Panic=1", "T5", true, 500, "refused 500: internal error"},
		{"CallSid=CA6&NoStatus=1", "T6", true, 500, "refused 500: internal error"},
	} {
		resp, b := post(c.body, c.token, c.signed)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "text/plain" || b != c.answer {
			t.Errorf("%s: %d %q %q, want %d text/plain %q", c.body, resp.StatusCode, resp.Header.Get("Content-Type"), b, c.status, c.answer)
		}
	}
	if n := handled.Load(); n != 6 {
		t.Errorf("handled %d times, want 6: a panicked delivery is handled again when it comes back", n)
	}
	if resp, _ := http.Get(srv.URL + "/webhook/vapi"); resp.StatusCode != 404 {
		t.Fatalf("a source that is not configured is not served: %d", resp.StatusCode)
	}
}

// A message's call object carries the status it had when the message was
// made, which may be older than the last status update: it sets the
// session's status only on first sight.
func TestCallObjectStatusNeverOverridesAnUpdate(t *testing.T) {
	e := newEnv(t, nil)
	raw := func(typ, extra string) string {
		return fmt.Sprintf(`{"message":{"type":%q,"timestamp":%d,"call":{"id":"S1","status":"queued"}%s}}`, typ, time.Now().UnixNano(), extra)
	}
	for _, b := range []string{
		raw("status-update", `,"status":"in-progress"`),
		raw("speech-update", `,"role":"user","status":"started","turn":1`),
	} {
		if s, r := e.send(b); s != 200 {
			t.Fatalf("%d %s", s, r)
		}
	}
	s, ok := e.app.Sessions.Get("S1")
	if !ok {
		t.Fatal("no session")
	}
	if st := s.State().Status; st != "in-progress" {
		t.Fatalf("status %q after an update to in-progress and a later message whose call object says queued", st)
	}
}
