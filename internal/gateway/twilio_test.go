package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/twilio"
)

const (
	twilioToken = "test-twilio-auth-token-0123456789"
	twilioBase  = "https://voice.example.com"
)

// withTwilio turns the Twilio door on: its public URL is twilioBase (a
// TLS-terminating proxy in front would make the server see another).
func withTwilio(extra func(*twilio.Config)) func(*config.Config) {
	return func(c *config.Config) {
		t := twilio.DefaultConfig()
		t.VoicePath, t.StatusPath, t.PublicBaseURL = "/twilio/voice", "/twilio/status", twilioBase
		t.AuthTokens = []twilio.Token{{Secret: confval.Secret{Value: twilioToken}}}
		t.Numbers = map[string]twilio.Answer{
			"+15550001111": {Sip: &twilio.SipAnswer{URI: "sip:assistant@example.sip.vapi.ai", Headers: map[string]string{"X-Call-Sid": "{CallSid}", "X-Note": "a&b <c>"}}},
			"+15550002222": {Stream: &twilio.StreamAnswer{URL: "wss://media.example.com/stream", Parameters: map[string]string{"callSid": "{CallSid}", "to": "{To}"}}},
			"+15550003333": {Say: "We moved. Call 555 0100. <Goodbye> & thanks"},
		}
		if extra != nil {
			extra(&t)
		}
		c.Twilio = t
	}
}

func incomingCall(sid, to string) url.Values {
	return url.Values{"CallSid": {sid}, "AccountSid": {"AC123"}, "From": {"+14155550123"}, "To": {to},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"}}
}

// postTwilio posts a form to path, signed as Twilio signs it for the
// public URL (sign false: unsigned; tamper alters the request after
// signing).
func (e *env) postTwilio(path string, form url.Values, sign bool, tamper func(*http.Request)) (*http.Response, string) {
	e.t.Helper()
	body := form.Encode()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sign {
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(twilioToken, twilio.Canonical(twilioBase+path, twilio.AppendValues(nil, form))))
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func parseTwiML(t *testing.T, body string) twilio.TwiML {
	t.Helper()
	d, err := twilio.ReadTwiML([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTwilioVoiceAnswers: a signed incoming call is answered with the
// TwiML its called number is configured with — SIP with custom headers, a
// media stream with parameters, a message — every value escaped; a number
// not configured hears the unknown-number message; the call is recorded
// (never the caller's number).
func TestTwilioVoiceAnswers(t *testing.T) {
	e := newEnv(t, withTwilio(nil))
	resp, body := e.postTwilio("/twilio/voice", incomingCall("CA1", "+15550001111"), true, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	d := parseTwiML(t, body)
	if d.Dial == nil || d.Dial.Sip != "sip:assistant@example.sip.vapi.ai?X-Call-Sid=CA1&X-Note=a%26b%20%3Cc%3E" {
		t.Fatalf("SIP answer: %s", body)
	}
	_, body = e.postTwilio("/twilio/voice", incomingCall("CA2", "+15550002222"), true, nil)
	d = parseTwiML(t, body)
	if d.Connect == nil || d.Connect.Stream.URL != "wss://media.example.com/stream" || len(d.Connect.Stream.Params) != 2 ||
		d.Param("callSid") != "CA2" || d.Param("to") != "+15550002222" {
		t.Fatalf("stream answer: %s", body)
	}
	_, body = e.postTwilio("/twilio/voice", incomingCall("CA3", "+15550003333"), true, nil)
	d = parseTwiML(t, body)
	if len(d.Say) != 1 || d.Say[0] != "We moved. Call 555 0100. <Goodbye> & thanks" || d.Hangup == nil || !strings.Contains(body, "&lt;Goodbye&gt; &amp; thanks") {
		t.Fatalf("say answer: %s", body)
	}
	_, body = e.postTwilio("/twilio/voice", incomingCall("CA4", "+15559999999"), true, nil)
	if d := parseTwiML(t, body); len(d.Say) != 1 || !strings.Contains(d.Say[0], "not in service") || d.Hangup == nil {
		t.Fatalf("unknown number: %s", body)
	}
	rec, timeline, err := e.app.Store.Call(context.Background(), "CA1")
	if err != nil || rec.Type != "twilio:inbound" || rec.AssistantID != "twilio:sip" || rec.OrgID != "AC123" || len(timeline) != 1 || timeline[0].Status != "ringing" {
		t.Fatalf("the call's record: %+v %+v %v", rec, timeline, err)
	}
	if strings.Contains(e.logs.String(), "4155550123") {
		t.Fatal("the caller's number is in the logs")
	}
}

// TestTwilioSignatureRefusals: every tampered variant is refused with 403
// and nothing done (no call recorded): missing, malformed, another token,
// a changed parameter, an added one, the internal URL signed instead of the
// public one, two signature headers; a request signed with the URL's
// default port added is accepted (Twilio's libraries accept both).
func TestTwilioSignatureRefusals(t *testing.T) {
	e := newEnv(t, withTwilio(nil))
	for _, c := range []struct {
		name   string
		sign   bool
		tamper func(*http.Request)
		form   func(url.Values)
		want   int
	}{
		{"missing", false, nil, nil, 403},
		{"malformed", false, func(r *http.Request) { r.Header.Set(twilio.SignatureHeader, "not-base64!") }, nil, 403},
		{"another token", false, func(r *http.Request) {
			r.Header.Set(twilio.SignatureHeader, twilio.Sign("another-token", twilio.Canonical(twilioBase+"/twilio/voice", nil)))
		}, nil, 403},
		{"two signature headers", true, func(r *http.Request) { r.Header.Add(twilio.SignatureHeader, r.Header.Get(twilio.SignatureHeader)) }, nil, 403},
		{"internal URL signed", false, func(r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(twilioToken, twilio.Canonical("http://"+r.Host+"/twilio/voice", twilio.AppendValues(nil, form))))
		}, nil, 403},
		{"a body that is not a form, signed over the URL alone", false, func(r *http.Request) {
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(twilioToken, twilio.Canonical(twilioBase+"/twilio/voice", nil)))
		}, nil, 403},
		{"no content type, signed over the URL alone", false, func(r *http.Request) {
			r.Header.Del("Content-Type")
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(twilioToken, twilio.Canonical(twilioBase+"/twilio/voice", nil)))
		}, nil, 403},
		{"default port added", false, func(r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(twilioToken, twilio.Canonical("https://voice.example.com:443/twilio/voice", twilio.AppendValues(nil, form))))
		}, nil, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			sid := "CAref" + strings.ReplaceAll(c.name, " ", "")
			resp, body := e.postTwilio("/twilio/voice", incomingCall(sid, "+15550003333"), c.sign, c.tamper)
			if resp.StatusCode != c.want {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, c.want, body)
			}
			if _, _, err := e.app.Store.Call(context.Background(), sid); (err == nil) != (c.want == 200) {
				t.Fatalf("answered %d, recorded: %v", resp.StatusCode, err)
			}
		})
	}
	// A parameter changed or added after signing.
	form := incomingCall("CAchg", "+15550003333")
	sig := twilio.Sign(twilioToken, twilio.Canonical(twilioBase+"/twilio/voice", twilio.AppendValues(nil, form)))
	for _, change := range []func(url.Values){
		func(v url.Values) { v.Set("To", "+15550001111") },
		func(v url.Values) { v.Set("Extra", "1") },
	} {
		f := incomingCall("CAchg", "+15550003333")
		change(f)
		resp, _ := e.postTwilio("/twilio/voice", f, false, func(r *http.Request) { r.Header.Set(twilio.SignatureHeader, sig) })
		if resp.StatusCode != 403 {
			t.Fatalf("a changed form: %d", resp.StatusCode)
		}
	}
	if got := e.metric(`voicegate_auth_failures_total{reason="mismatch",source="twilio-voice"}`); got == "" || got == "0" {
		t.Fatalf("auth failures not counted: %q", got)
	}
}

// TestTwilioStatusCallbacks: status callbacks update the call's timeline
// and end it with its duration on a final status. A retry (the same body)
// is answered from the replay cache once, whatever its idempotency token:
// the token is not signed, so it is not what decides.
func TestTwilioStatusCallbacks(t *testing.T) {
	e := newEnv(t, withTwilio(nil))
	e.postTwilio("/twilio/voice", incomingCall("CAst", "+15550003333"), true, nil)
	// Twilio's timestamps have one-second resolution: the callbacks say
	// the current second, as a real call's quick statuses do.
	base := time.Now().UTC().Truncate(time.Second)
	status := func(st, dur, token string, at int) int {
		f := url.Values{"CallSid": {"CAst"}, "AccountSid": {"AC123"}, "CallStatus": {st}, "Direction": {"inbound"},
			"Timestamp": {base.Format(time.RFC1123Z)}, "SequenceNumber": {strconv.Itoa(at)}}
		if dur != "" {
			f.Set("CallDuration", dur)
		}
		resp, _ := e.postTwilio("/twilio/status", f, true, func(r *http.Request) {
			if token != "" {
				r.Header.Set(twilio.IdempotencyHeader, token)
			}
		})
		return resp.StatusCode
	}
	for _, c := range []struct {
		st, dur, token string
		at             int
	}{
		{"in-progress", "", "tok1", 1},
		{"completed", "42", "tok2", 2},
		{"completed", "42", "tok2", 2},   // Twilio's retry: the same body and token
		{"completed", "42", "forged", 2}, // the same body with another token: still a replay
		{"in-progress", "", "tok2", 3},   // another body with a used token: handled (it is signed)
	} {
		if s := status(c.st, c.dur, c.token, c.at); s != 204 {
			t.Fatalf("status %s: %d", c.st, s)
		}
	}
	rec, timeline, err := e.app.Store.Call(context.Background(), "CAst")
	if err != nil || rec.EndedReason != "completed" || rec.Duration == nil || *rec.Duration != 42 || rec.EndedAt.IsZero() {
		t.Fatalf("the call after its final status: %+v %v", rec, err)
	}
	// ringing, in-progress, completed, and the late in-progress (kept in
	// the history, never reopening the call)
	if len(timeline) != 4 || timeline[0].Status != "ringing" || timeline[1].Status != "in-progress" || timeline[2].Status != "completed" {
		t.Fatalf("timeline %+v", timeline)
	}
	if got := e.metric(`voicegate_requests_total{outcome="replay",source="twilio-status",type="none"}`); got != "2" {
		t.Fatalf("retries answered from the cache: %q, want 2", got)
	}
}

// failingCalls is the real SQLite store whose call writes fail while fail
// is set (a full disk).
type failingCalls struct {
	*sqlite.DB
	fail atomic.Bool
}

func (f *failingCalls) CreateCall(ctx context.Context, r calls.Record) error {
	if f.fail.Load() {
		return errors.New("database or disk is full")
	}
	return f.DB.CreateCall(ctx, r)
}

// TestTwilioFailuresStillAnswerTheCaller: a voice webhook that cannot be
// recorded still gets TwiML (the error message, then hang-up), never an
// error status that makes Twilio play its own message; a status callback
// that cannot be stored is a 503, so it is not lost silently; closed hours
// play the closed message.
func TestTwilioFailuresStillAnswerTheCaller(t *testing.T) {
	var store *failingCalls
	e := newEnvWith(t, withTwilio(func(c *twilio.Config) {
		c.Numbers["+15550004444"] = twilio.Answer{Say: "open", ClosedMessage: "We are closed.",
			Hours: &twilio.Hours{TimeZone: "UTC", Open: []string{"mon-fri 08:00-18:00"}}}
	}), func(s calls.Store) calls.Store { store = &failingCalls{DB: s.(*sqlite.DB)}; return store })
	store.fail.Store(true)
	resp, body := e.postTwilio("/twilio/voice", incomingCall("CAfail", "+15550001111"), true, nil)
	if d := parseTwiML(t, body); resp.StatusCode != 200 || len(d.Say) != 1 || !strings.Contains(d.Say[0], "cannot take your call") || d.Hangup == nil {
		t.Fatalf("a store failure: %d %s", resp.StatusCode, body)
	}
	f := url.Values{"CallSid": {"CAfail"}, "CallStatus": {"completed"}}
	if resp, _ := e.postTwilio("/twilio/status", f, true, nil); resp.StatusCode != 503 {
		t.Fatalf("a status that cannot be stored: %d", resp.StatusCode)
	}
	store.fail.Store(false)
	// Saturday 2026-12-05 10:00 UTC: closed on weekends.
	e.skew.Store(int64(time.Until(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))))
	_, body = e.postTwilio("/twilio/voice", incomingCall("CAclosed", "+15550004444"), true, nil)
	if d := parseTwiML(t, body); len(d.Say) != 1 || d.Say[0] != "We are closed." {
		t.Fatalf("closed hours: %s", body)
	}
	// Wednesday 2026-12-09 10:00 UTC: open.
	e.skew.Store(int64(time.Until(time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC))))
	_, body = e.postTwilio("/twilio/voice", incomingCall("CAopen", "+15550004444"), true, nil)
	if d := parseTwiML(t, body); len(d.Say) != 1 || d.Say[0] != "open" {
		t.Fatalf("open hours: %s", body)
	}
}

// TestTwilioPublicURLFromTrustedProxy: without public_base_url, the URL
// Twilio signed is rebuilt from X-Forwarded-Proto and X-Forwarded-Host —
// only when the request comes from a trusted proxy.
func TestTwilioPublicURLFromTrustedProxy(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		e := newEnv(t, func(c *config.Config) {
			withTwilio(func(t *twilio.Config) { t.PublicBaseURL = "" })(c)
			c.Server.TrustedProxies = []string{"10.0.0.1"}
			if trusted {
				c.Server.TrustedProxies = []string{"127.0.0.1"}
			}
		})
		resp, _ := e.postTwilio("/twilio/voice", incomingCall("CAproxy", "+15550003333"), true, func(r *http.Request) {
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-Host", "voice.example.com")
		})
		if want := map[bool]int{true: 200, false: 403}[trusted]; resp.StatusCode != want {
			t.Fatalf("trusted=%v: %d, want %d", trusted, resp.StatusCode, want)
		}
	}
}

// TestTwilioTokenBoundToItsAccount: a token configured with account_sid
// signs only requests for that account: a sub-account cannot act on
// another account's calls with its own token.
func TestTwilioTokenBoundToItsAccount(t *testing.T) {
	const subToken = "sub-account-token-9f8e7d6c5b4a3210"
	e := newEnv(t, withTwilio(func(c *twilio.Config) {
		c.AuthTokens = append(c.AuthTokens, twilio.Token{Secret: confval.Secret{Value: subToken}, AccountSid: "AC0123456789abcdef0123456789abcdef"})
	}))
	signWith := func(token string) func(*http.Request) {
		return func(r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(token, twilio.Canonical(twilioBase+r.URL.Path, twilio.AppendValues(nil, form))))
		}
	}
	own := incomingCall("CAsub1", "+15550003333")
	own.Set("AccountSid", "AC0123456789abcdef0123456789abcdef")
	if resp, _ := e.postTwilio("/twilio/voice", own, false, signWith(subToken)); resp.StatusCode != 200 {
		t.Fatalf("the sub-account's own call: %d", resp.StatusCode)
	}
	other := incomingCall("CAsub2", "+15550003333") // AccountSid AC123: another account
	if resp, _ := e.postTwilio("/twilio/voice", other, false, signWith(subToken)); resp.StatusCode != 403 {
		t.Fatalf("another account's call signed with the sub-account's token: %d", resp.StatusCode)
	}
	if resp, _ := e.postTwilio("/twilio/voice", other, false, signWith(twilioToken)); resp.StatusCode != 200 {
		t.Fatalf("an unbound token: %d", resp.StatusCode)
	}
	// The sub-account's token, its own AccountSid in the form, naming the
	// other account's call: refused, the call left as it was.
	forged := url.Values{"CallSid": {"CAsub2"}, "AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "CallStatus": {"completed"}}
	if resp, _ := e.postTwilio("/twilio/status", forged, false, signWith(subToken)); resp.StatusCode != 403 {
		t.Fatalf("a status for another account's call: %d", resp.StatusCode)
	}
	if rec, _, err := e.app.Store.Call(context.Background(), "CAsub2"); err != nil || !rec.EndedAt.IsZero() {
		t.Fatalf("another account's call was changed: %+v %v", rec, err)
	}
	// Nor a Vapi call's id.
	if s, _ := e.send(msg("status-update", "VAPI-CALL", `"status":"in-progress"`)); s != 200 {
		t.Fatal(s)
	}
	vapiForged := url.Values{"CallSid": {"VAPI-CALL"}, "AccountSid": {"AC123"}, "CallStatus": {"completed"}}
	if resp, _ := e.postTwilio("/twilio/status", vapiForged, false, signWith(twilioToken)); resp.StatusCode != 403 {
		t.Fatalf("a Twilio status for a Vapi call: %d", resp.StatusCode)
	}
}
