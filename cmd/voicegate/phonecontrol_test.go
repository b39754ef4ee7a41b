package main

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// twilioStandIn stands in for Twilio's REST API. The real one
// (api.twilio.com) is outside the customer's network and would act on
// real calls, so the test runs a local HTTP server on 127.0.0.1 that
// answers as Twilio does — the call resource as JSON on success, an error
// object with the HTTP status otherwise — and records every request it
// receives. voicegate reaches it through vapi.phone_call_control's
// api_base_url, which may be http only on loopback, for such a stand-in.
type twilioStandIn struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []twilioRequest
	// answers are the statuses to answer for a call SID, in turn (or
	// stall); 200 once they are used up.
	answers map[string][]int
}

// stall, as a status for the stand-in to answer, is no answer at all.
const stall = -1

// twilioRequest is a request as the stand-in received it.
type twilioRequest struct {
	method, path, contentType string
	user, pass                string
	basic                     bool
	form                      url.Values
}

// String shows the request without its password (the auth token): a
// failing test prints it.
func (r twilioRequest) String() string {
	return fmt.Sprintf("%s %s %q basic=%t user=%q form %q", r.method, r.path, r.contentType, r.basic, r.user, r.form)
}

func newTwilioStandIn(t *testing.T) *twilioStandIn {
	s := &twilioStandIn{answers: map[string][]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		form, _ := url.ParseQuery(string(b))
		user, pass, basic := r.BasicAuth()
		sid := strings.TrimSuffix(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], ".json")
		s.mu.Lock()
		s.reqs = append(s.reqs, twilioRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), user, pass, basic, form})
		status := http.StatusOK
		if q := s.answers[sid]; len(q) > 0 {
			status, s.answers[sid] = q[0], q[1:]
		}
		s.mu.Unlock()
		if status == stall {
			// No answer until the client gives up (5 s at most).
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprintf(w, `{"sid":%q,"status":"in-progress","api_version":"2010-04-01"}`, sid)
			return
		}
		fmt.Fprintf(w, `{"code":20%03d,"message":"stand-in error","more_info":"https://www.twilio.com/docs/errors/20%03d","status":%d}`, status, status, status)
	}))
	t.Cleanup(s.Close)
	return s
}

// answer makes the stand-in answer the next requests for sid with
// statuses, in turn.
func (s *twilioStandIn) answer(sid string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[sid] = statuses
}

// received returns the requests received since the n-th.
func (s *twilioStandIn) received(n int) []twilioRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]twilioRequest(nil), s.reqs[n:]...)
}

func (s *twilioStandIn) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// TestPhoneControl starts the real binary with vapi.phone_call_control
// pointed at a stand-in for Twilio's REST API (twilioStandIn), the account
// SID from the environment and the auth token from the environment or a
// file, and sends signed phone-call-control messages shaped like the SDK's
// ServerMessagePhoneCallControl (request, destination, call with
// phoneCallProvider twilio and its phoneCallProviderId). Each forward or
// hang-up must reach the stand-in as exactly the update the code makes —
// POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json with Basic
// auth, form-encoded Twiml=<Dial> for a forward and Status=completed for a
// hang-up — with 429, 5xx and no answer within the timeout retried
// `retries` times and no more (then 503, so that Vapi sends it again, and
// the resend is handled, not answered from the replay cache), a 4xx not
// retried and answered {} (the README: the call cannot be controlled, a
// retry would not change that), every action audited, and the auth token
// never in the log. Nothing the test prints shows the token either.
func TestPhoneControl(t *testing.T) {
	const (
		secret     = "e2e-phone-Lq8Vx2Rm7Tk3Wz9P"
		accountSid = "AC0123456789abcdef0123456789abcdef"
		token      = "e2e-twilio-auth-Z7k2Q9m4X8v3R6p1"
	)
	for _, source := range []string{"env", "file"} {
		t.Run("token from "+source, func(t *testing.T) {
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			api := newTwilioStandIn(t)
			tokenCfg := "auth_token: ${TWILIO_AUTH_TOKEN}"
			env := []string{"E2E_SECRET=" + secret, "TWILIO_ACCOUNT_SID=" + accountSid}
			if source == "env" {
				env = append(env, "TWILIO_AUTH_TOKEN="+token)
			} else {
				tokenFile := filepath.Join(dir, "twilio-token")
				os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
				tokenCfg = "auth_token_file: " + tokenFile
			}
			cfgPath := filepath.Join(dir, "voicegate.yaml")
			os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log: {level: debug, redact_pii: false}
server: {shutdown_delay: 0s}
vapi:
  auth: [{mode: hmac, secrets: ["${E2E_SECRET}"]}]
  phone_call_control:
    account_sid: ${TWILIO_ACCOUNT_SID}
    %s
    api_base_url: %s
    timeout: 2s
    retries: 2
`, dataDir, tokenCfg, api.URL)), 0o600)
			if out, err := run(t, env, "config", "check", "--config", cfgPath); err != nil || strings.Contains(out, token) {
				t.Fatalf("config check (the token shown as <TOKEN>): %v\n%s", err, strings.ReplaceAll(out, token, "<TOKEN>"))
			}
			p := start(t, env, "serve", "--config", cfgPath)
			vapi := newVapiSender(t, p, secret)
			testPhoneControl(t, p, vapi, api, dataDir, source == "env", accountSid, token)
		})
	}
}

func testPhoneControl(t *testing.T, p *proc, vapi *vapiSender, api *twilioStandIn, dataDir string, all bool, accountSid, token string) {
	// The token, alone or in the Basic credentials, as the test prints it.
	basic := base64.StdEncoding.EncodeToString([]byte(accountSid + ":" + token))
	hide := strings.NewReplacer(token, "<TOKEN>", basic, "<BASIC>").Replace
	vapi.hide = hide
	path := func(sid string) string { return "/2010-04-01/Accounts/" + accountSid + "/Calls/" + sid + ".json" }
	message := func(callID, provider, sid, request, destination string) []byte {
		dest := ""
		if destination != "" {
			dest = `,"destination":` + destination
		}
		return []byte(fmt.Sprintf(`{"message":{"type":"phone-call-control","timestamp":%d,"request":%q%s,"call":{"id":%q,"orgId":"org-e2e",`+
			`"createdAt":"2026-01-05T10:00:00.000Z","updatedAt":"2026-01-05T10:00:05.000Z","type":"inboundPhoneCall","status":"in-progress",`+
			`"phoneCallProvider":%q,"phoneCallProviderId":%q,"customer":{"number":"+14155550123"}}}}`,
			vapi.timestamp(), request, dest, callID, provider, sid))
	}
	const (
		toNumber    = `{"type":"number","number":"+14155550188","callerId":"+15550001111"}`
		toSip       = `{"type":"sip","sipUri":"sip:agent@example.com"}`
		dialNum     = xml.Header + `<Response><Dial callerId="+15550001111"><Number>+14155550188</Number></Dial></Response>`
		toExtension = `{"type":"number","number":"+14155550188","extension":"w1234#","message":"Transferring you now."}`
		dialExt     = xml.Header + `<Response><Dial><Number sendDigits="w1234#">+14155550188</Number></Dial></Response>`
		dialSip     = xml.Header + `<Response><Dial><Sip>sip:agent@example.com</Sip></Dial></Response>`
	)
	type step struct {
		name    string
		callID  string
		body    []byte // sent as is (a resend repeats a body)
		answers []int  // the stand-in's statuses for this call, in turn
		// What voicegate must answer, the updates the stand-in must
		// receive for the call (each the same form), and the audit
		// entry's detail ("" when the step is not audited).
		status  int
		updates int
		form    url.Values
		audit   string
	}
	sid := func(i int) string { return fmt.Sprintf("CA%032x", 0xe2e000+i) }
	hangUp := url.Values{"Status": {"completed"}}
	failing := message("call-5xx-exhausted", "twilio", sid(6), "hang-up", "")
	steps := []step{
		{name: "forward to a number", callID: "call-fwd-number", body: message("call-fwd-number", "twilio", sid(1), "forward", toNumber),
			status: 200, updates: 1, form: url.Values{"Twiml": {dialNum}}, audit: "forward to a number: ok"},
		{name: "hang-up", callID: "call-hang-up", body: message("call-hang-up", "twilio", sid(3), "hang-up", ""),
			status: 200, updates: 1, form: hangUp, audit: "hang-up: ok"},
	}
	if all {
		hung := steps[1].body
		steps = append(steps, []step{
			// The SDK's number destination (TransferDestinationNumber)
			// may carry the extension to dial once the number answers:
			// Twilio plays it as DTMF (sendDigits).
			{name: "forward to a number and extension", callID: "call-fwd-ext", body: message("call-fwd-ext", "twilio", sid(10), "forward", toExtension),
				status: 200, updates: 1, form: url.Values{"Twiml": {dialExt}}, audit: "forward to a number: ok"},
			{name: "an extension Twilio cannot dial: nothing sent", callID: "call-bad-ext", body: message("call-bad-ext", "twilio", sid(11), "forward", `{"type":"number","number":"+14155550188","extension":"ext. 12"}`),
				status: 200, audit: "forward: not executed: the destination's extension is not digits, *, # and w (a pause)"},
			{name: "forward to a SIP URI", callID: "call-fwd-sip", body: message("call-fwd-sip", "twilio", sid(2), "forward", toSip),
				status: 200, updates: 1, form: url.Values{"Twiml": {dialSip}}, audit: "forward to a sip: ok"},
			// Vapi sends an answered message again: the replay cache
			// answers, Twilio is not asked twice.
			{name: "the answered hang-up sent again", callID: "call-hang-up", body: hung, status: 200},
			{name: "503 and 429 retried, then done", callID: "call-5xx-retried", body: message("call-5xx-retried", "twilio", sid(5), "hang-up", ""),
				answers: []int{503, 429}, status: 200, updates: 3, form: hangUp, audit: "hang-up: ok"},
			{name: "no answer within the timeout: retried", callID: "call-stalled", body: message("call-stalled", "twilio", sid(4), "hang-up", ""),
				answers: []int{stall}, status: 200, updates: 2, form: hangUp, audit: "hang-up: ok"},
			{name: "5xx until the retries are used up: 503 to Vapi", callID: "call-5xx-exhausted", body: failing,
				answers: []int{500, 502, 503, 500}, status: 503, updates: 3, form: hangUp, audit: "hang-up: failed: twilio call update: status 503"},
			// Vapi sends it again after the 503: handled (a 5xx is never
			// kept by the replay cache), the one status left, then done.
			{name: "the failed hang-up sent again", callID: "call-5xx-exhausted", body: failing,
				status: 200, updates: 2, form: hangUp, audit: "hang-up: ok"},
			{name: "404 (the call is over): not retried, answered", callID: "call-404", body: message("call-404", "twilio", sid(7), "hang-up", ""),
				answers: []int{404}, status: 200, updates: 1, form: hangUp, audit: "hang-up: not executed: twilio call update refused: status 404"},
			{name: "400 on a forward: not retried, answered", callID: "call-400", body: message("call-400", "twilio", sid(8), "forward", toNumber),
				answers: []int{400}, status: 200, updates: 1, form: url.Values{"Twiml": {dialNum}}, audit: "forward: not executed: twilio call update refused: status 400"},
			{name: "a call not carried by Twilio: nothing sent", callID: "call-vonage", body: message("call-vonage", "vonage", "6b0d7c2e-vonage", "hang-up", ""),
				status: 200, audit: "hang-up: not executed: the call has no Twilio call id"},
			{name: "a destination that is not a number: nothing sent", callID: "call-bad-dest", body: message("call-bad-dest", "twilio", sid(9), "forward", `{"type":"number","number":"555"}`),
				status: 200, audit: "forward: not executed: the destination is neither a number in E.164 nor a sip: URI"},
		}...)
	}
	var audited []step
	for _, s := range steps {
		// The stand-in's answers for the call; the resend of the failing
		// hang-up finds the one left.
		var callSid string
		if i := strings.Index(string(s.body), `"phoneCallProviderId":"`); i >= 0 {
			callSid, _, _ = strings.Cut(string(s.body[i+len(`"phoneCallProviderId":"`):]), `"`)
		}
		if s.answers != nil {
			api.answer(callSid, s.answers...)
		}
		n := api.count()
		t0 := time.Now()
		status, answer := vapi.post(s.body)
		took := time.Since(t0)
		if status != s.status || (status == 200 && answer != "{}") {
			t.Fatalf("%s: %d %s, want %d {}\n%s", s.name, status, answer, s.status, hide(drain(p.logs)))
		}
		// Retries are bounded in count and time: 3 attempts of at most 2 s
		// each and 0.6 s of backoff.
		if took > 8*time.Second {
			t.Errorf("%s: answered after %s", s.name, took)
		}
		got := api.received(n)
		if len(got) != s.updates {
			t.Fatalf("%s: the stand-in received %d requests, want %d: %v", s.name, len(got), s.updates, got)
		}
		for i, r := range got {
			if r.method != http.MethodPost || r.path != path(callSid) || r.contentType != "application/x-www-form-urlencoded" ||
				!r.basic || r.user != accountSid || r.pass != token || fmt.Sprint(r.form) != fmt.Sprint(s.form) {
				t.Errorf("%s: request %d: %s (the token as password: %t); want POST %s, Basic auth with the account SID and token, form %q",
					s.name, i+1, r, r.pass == token, path(callSid), s.form)
			}
		}
		if s.audit != "" {
			audited = append(audited, s)
		}
	}

	entries, out := auditList(t, dataDir, "phone-call-control")
	if len(entries) != len(audited) {
		t.Fatalf("%d phone-call-control audit entries, want %d:\n%s", len(entries), len(audited), hide(out))
	}
	for i, s := range audited {
		if e := entries[i]; e.subject != s.callID || e.detail != s.audit {
			t.Errorf("%s: audited %q %q, want %q %q", s.name, e.subject, hide(e.detail), s.callID, s.audit)
		}
	}
	logs := p.stop(t)
	// The token, alone or in the Basic credentials, is in neither log;
	// nor the numbers of the caller or of the forward.
	for leak, shown := range map[string]string{token: "the auth token", basic: "the Basic credentials", "4155550123": "4155550123", "4155550188": "4155550188"} {
		if strings.Contains(logs, leak) || strings.Contains(out, leak) {
			t.Errorf("a log holds %s:\nstderr:\n%s\naudit:\n%s", shown, hide(logs), hide(out))
		}
	}
	if all && (strings.Count(logs, `"msg":"phone-call-control executed"`) != 7 || strings.Count(logs, `"msg":"phone-call-control not executed"`) != 5) {
		t.Errorf("log lines of the actions:\n%s", hide(logs))
	}
}
