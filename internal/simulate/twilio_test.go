package simulate

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/twilio"
)

const (
	testToken = "simulate-twilio-token-4f8e2a9c1b7d"
	// publicBase is what Twilio would be configured with; the test server
	// listens elsewhere (httptest's address), as behind a TLS-terminating
	// proxy.
	publicBase = "https://voice.example.com"
)

func twilioConfig() twilio.Config {
	c := twilio.DefaultConfig()
	c.VoicePath, c.StatusPath, c.PublicBaseURL = "/twilio/voice", "/twilio/status", publicBase
	c.AuthTokens = []twilio.Token{{Secret: confval.Secret{Value: testToken}}}
	c.Numbers = map[string]twilio.Answer{
		"+15550001111": {Sip: &twilio.SipAnswer{URI: "sip:assistant@example.sip.vapi.ai", Headers: map[string]string{"X-Call-Sid": "{CallSid}"}}},
		"+15550002222": {Stream: &twilio.StreamAnswer{URL: "wss://media.example.com/stream", Parameters: map[string]string{"callSid": "{CallSid}"}}},
		"+15550003333": {Say: "This number has moved."},
		"+15550004444": {Say: "open", ClosedMessage: "We are closed.", Hours: &twilio.Hours{TimeZone: "UTC", Open: []string{"mon 00:00-00:01"}}},
	}
	return c
}

// newTwilioServer runs voicegate in-process with the Twilio door on, and
// returns its address and the app (to read what was stored).
func newTwilioServer(t *testing.T) (string, *app.App) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a := config.AuthConfig{Mode: auth.ModeHMAC, Secrets: []config.Secret{{Value: "simulate-vapi-secret-Wq7Zk3Rm8Xp2"}}}
	a.Complete()
	cfg.Vapi.Auth = []config.AuthConfig{a}
	cfg.Twilio = twilioConfig()
	if err := cfg.Check(config.Options{}); err != nil {
		t.Fatal(err)
	}
	ap, err := app.New(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	srv := httptest.NewServer(ap.Gateway)
	t.Cleanup(srv.Close)
	return srv.URL, ap
}

func storedCalls(t *testing.T, ap *app.App) []calls.Record {
	t.Helper()
	recs, err := ap.Store.List(context.Background(), calls.ListFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func playTwilio(base, scenario, number string, effects bool, token string) ([]Step, string, error) {
	var out bytes.Buffer
	steps, err := Run(context.Background(), Options{URL: base, Scenario: scenario, Effects: effects, Timeout: 5 * time.Second,
		Twilio: &Twilio{Config: twilioConfig(), Token: token, Number: number}}, &out)
	return steps, out.String(), err
}

// TestTwilioScenarios plays the incoming call, its status callbacks and
// retries, and every tampered variant against voicegate: each step gets
// the answer a correct receiver gives, the call is stored once with its
// timeline (the retries de-duplicated), and no tampered request stored
// anything.
func TestTwilioScenarios(t *testing.T) {
	base, ap := newTwilioServer(t)
	steps, out, err := playTwilio(base, "twilio", "+15550001111", true, testToken)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]int{
		"incoming call to +15550001111": 200, "incoming call retried (same idempotency token)": 200,
		"status in-progress": 204, "status completed": 204, "status completed retried (same idempotency token)": 204,
		"signed, without CallSid": 200, "unsigned": 403, "wrong auth token": 403, "parameter changed after signing (To)": 403,
		"parameter added after signing (Digits)": 403, "signed over the internal URL": 403, "two signature headers": 403,
		"status callback unsigned": 403,
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d:\n%s", len(steps), len(want), out)
	}
	for _, s := range steps {
		if w, ok := want[s.Name]; !ok || s.Status != w || s.Err != nil {
			t.Errorf("step %q: %d %v (want %d)", s.Name, s.Status, s.Err, w)
		}
	}
	for _, w := range []string{"requests go to " + base + " (/twilio/voice, /twilio/status), signed for " + publicBase,
		"answered <Dial><Sip>sip:assistant@example.sip.vapi.ai?X-Call-Sid=CA", "answered the same", "13 of 13 steps answered as expected"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	recs := storedCalls(t, ap)
	if len(recs) != 1 {
		t.Fatalf("stored %d calls, want the one call (no tampered request): %+v", len(recs), recs)
	}
	rec, timeline, err := ap.Store.Call(context.Background(), recs[0].ID)
	if err != nil || !strings.Contains(out, rec.ID) || rec.AssistantID != "twilio:sip" || rec.EndedReason != "completed" || rec.Duration == nil || *rec.Duration != 73 {
		t.Fatalf("the call: %+v %v", rec, err)
	}
	// The timeline is in time order, and a callback's Timestamp has
	// Twilio's one-second resolution: within the same second it sorts
	// before the incoming call's ringing. What matters here is that each
	// status is there once.
	var sts []string
	for _, c := range timeline {
		sts = append(sts, c.Status)
	}
	slices.Sort(sts)
	if strings.Join(sts, " ") != "completed in-progress ringing" {
		t.Fatalf("timeline %v: the retries must be answered from the replay cache", sts)
	}
}

// TestTwilioExpectedAnswers: the incoming call's answer is checked against
// what the called number is configured with.
func TestTwilioExpectedAnswers(t *testing.T) {
	base, _ := newTwilioServer(t)
	for number, note := range map[string]string{
		"+15550002222": "answered <Connect><Stream> wss://media.example.com/stream",
		"+15550003333": "answered <Say> (say) and <Hangup>",
		"+15550004444": "answered <Say> (closed) and <Hangup>", // open one minute a week
		"+15559999999": "answered <Say> (unknown number) and <Hangup>",
	} {
		if _, out, err := playTwilio(base, "twilio-call", number, true, testToken); err != nil || !strings.Contains(out, note) {
			t.Errorf("%s: %v\n%s", number, err, out)
		}
	}
}

// TestTwilioSecurityStoresNothing: the security scenario needs no
// --effects and leaves no call behind.
func TestTwilioSecurityStoresNothing(t *testing.T) {
	base, ap := newTwilioServer(t)
	if _, out, err := playTwilio(base, "twilio-security", "+15550001111", false, testToken); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if recs := storedCalls(t, ap); len(recs) != 0 {
		t.Fatalf("stored %+v", recs)
	}
	// The scenarios that store a call refuse to run as a dry run.
	for _, sc := range []string{"twilio-call", "twilio"} {
		if _, _, err := playTwilio(base, sc, "+15550001111", false, testToken); err == nil || !strings.Contains(err.Error(), "--effects") {
			t.Errorf("%s without effects: %v", sc, err)
		}
	}
}

// TestTwilioWrongTokenFails: signed with a token the server does not
// have, every accepted step fails and Run says so.
func TestTwilioWrongTokenFails(t *testing.T) {
	base, ap := newTwilioServer(t)
	steps, out, err := playTwilio(base, "twilio", "+15550001111", true, "not-the-configured-token-0123")
	if err == nil || !strings.Contains(out, "FAIL") {
		t.Fatalf("a wrong token must fail:\n%s", out)
	}
	for _, s := range steps {
		if s.Want != 403 && s.Status != 403 {
			t.Errorf("step %q answered %d with a wrong token", s.Name, s.Status)
		}
	}
	if recs := storedCalls(t, ap); len(recs) != 0 {
		t.Fatalf("stored %+v", recs)
	}
}

// TestTwilioCatchesAServerThatDoesNotVerify: a receiver that answers every
// request, signed or not, fails every tampered step.
func TestTwilioCatchesAServerThatDoesNotVerify(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/status") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Say>`+twilio.DefaultConfig().ErrorMessage+`</Say><Hangup></Hangup></Response>`)
	}))
	defer srv.Close()
	steps, out, err := playTwilio(srv.URL, "twilio-security", "+15550001111", false, testToken)
	if err == nil {
		t.Fatalf("a server that verifies nothing passed:\n%s", out)
	}
	for _, s := range steps {
		if s.Want == 403 && s.Status == 403 {
			t.Errorf("step %q passed against a server that verifies nothing", s.Name)
		}
	}
}
