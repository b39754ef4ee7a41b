package bench

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/twilio"
)

const twilioToken = "bench-twilio-token-9c4e1f7a2b8d"

func twilioTarget(token string) *TwilioTarget {
	return &TwilioTarget{PublicBaseURL: "https://voice.example.com", VoicePath: "/twilio/voice", StatusPath: "/twilio/status",
		Token: token, Number: "+15550001111"}
}

// TestTwilioWorkloadVerifies reads every pre-built request of the twilio
// mix as voicegate does: each verifies with internal/twilio's Verifier
// over the public URL (and not over the address it is sent to), is
// unique in body and idempotency token, and each call is an incoming call
// followed by its status callbacks to completed.
func TestTwilioWorkloadVerifies(t *testing.T) {
	b := &builder{host: "127.0.0.1:1", w: Workload{Mix: "twilio", Calls: 4, CallPrefix: "t"}, now: time.Now(),
		rng: rand.New(rand.NewPCG(1, 7)), hdr: http.Header{}, tw: twilioTarget(twilioToken)}
	reqs := b.build(600, nil)
	v, err := twilio.NewVerifier([]string{twilioToken})
	if err != nil {
		t.Fatal(err)
	}
	seenBody, seenToken := map[string]bool{}, map[string]bool{}
	var kinds [numKinds]int
	next := map[string]string{} // call SID -> the status its next request must carry
	for _, r := range reqs {
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(r.raw)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(hr.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil || hr.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Fatalf("not a form: %v %s", err, r.raw)
		}
		sigs := hr.Header.Values(twilio.SignatureHeader)
		if len(sigs) != 1 {
			t.Fatalf("signature headers: %q", sigs)
		}
		params := twilio.AppendValues(nil, form)
		if _, err := v.Verify(&twilio.Request{URL: "https://voice.example.com" + hr.RequestURI, Params: params, Signature: sigs[0]}); err != nil {
			t.Fatalf("pre-signed request refused: %v\n%s", err, r.raw)
		}
		if _, err := v.Verify(&twilio.Request{URL: "http://127.0.0.1:1" + hr.RequestURI, Params: params, Signature: sigs[0]}); err == nil {
			t.Fatal("signed for the address it is sent to, not for the public URL")
		}
		tok := hr.Header.Get(twilio.IdempotencyHeader)
		if seenBody[string(body)] || tok == "" || seenToken[tok] {
			t.Fatalf("duplicate body or idempotency token %q: the replay cache would answer it", tok)
		}
		seenBody[string(body)], seenToken[tok] = true, true
		kinds[r.kind]++
		sid, st := form.Get("CallSid"), form.Get("CallStatus")
		if len(sid) != 34 || form.Get("To") != "+15550001111" {
			t.Fatalf("call %q to %q", sid, form.Get("To"))
		}
		wantPath, wantStatus, wantKind := "/twilio/status", next[sid], uint8(kTwilioStatus)
		switch {
		case wantStatus == "":
			wantPath, wantStatus, wantKind, next[sid] = "/twilio/voice", "ringing", kTwilioVoice, "in-progress"
		case wantStatus == "in-progress":
			next[sid] = "completed"
		default:
			wantKind, next[sid] = kTwilioFinal, "done"
			if form.Get("CallDuration") == "" {
				t.Fatalf("completed without its duration: %s", body)
			}
		}
		if hr.URL.Path != wantPath || st != wantStatus || r.kind != wantKind {
			t.Fatalf("call %s: %s %s (kind %s), want %s %s", sid, hr.URL.Path, st, kindNames[r.kind], wantPath, wantStatus)
		}
	}
	if kinds[kTwilioVoice] != 200 || kinds[kTwilioStatus] != 200 || kinds[kTwilioFinal] != 200 {
		t.Fatalf("kinds %v: want one of each per call", kinds)
	}
}

func newTwilioGateway(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Vapi.Auth = []config.AuthConfig{hmacAuth()}
	tw := twilio.DefaultConfig()
	tw.VoicePath, tw.StatusPath, tw.PublicBaseURL = "/twilio/voice", "/twilio/status", "https://voice.example.com"
	tw.AuthTokens = []twilio.Token{{Secret: confval.Secret{Value: twilioToken}}}
	tw.Numbers = map[string]twilio.Answer{"+15550001111": {Sip: &twilio.SipAnswer{URI: "sip:assistant@example.sip.vapi.ai"}}}
	cfg.Twilio = tw
	if err := cfg.Check(config.Options{}); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Gateway)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRunTwilioAgainstVoicegate: the mix is answered 200 (TwiML) and 204
// (status callbacks) throughout, reported under Twilio's types; signed
// with another token, every request is refused and reported so.
func TestRunTwilioAgainstVoicegate(t *testing.T) {
	base := newTwilioGateway(t)
	o := Options{URL: base, Mode: "closed", Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		MaxRequests: 3000, ServerPID: os.Getpid(), Workload: Workload{Mix: "twilio"}, Twilio: twilioTarget(twilioToken)}
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.Statuses["200"] == 0 || r.Statuses["204"] == 0 || r.Statuses["200"]+r.Statuses["204"] != r.Requests {
		t.Fatalf("statuses %v, errors %d (%s)", r.Statuses, r.Errors, r.FirstError)
	}
	names := map[string]bool{}
	for _, k := range r.Kinds {
		names[k.Name] = true
	}
	if len(names) != 3 || !names["twilio-voice"] || !names["twilio-status"] || !names["twilio-status-final"] {
		t.Fatalf("types %v", names)
	}
	o.Twilio = twilioTarget("not-the-configured-token-0123")
	o.Warmup, o.Duration, o.MaxRequests = 0, 100*time.Millisecond, 300
	if r, err = Run(context.Background(), o); err != nil || r.Statuses["403"] == 0 || len(r.Statuses) != 1 {
		t.Fatalf("wrongly signed: %v %v", err, r.Statuses)
	}
	o.Twilio, o.Signer = nil, nil
	if _, err := Run(context.Background(), o); err == nil {
		t.Fatal("the twilio mix ran without its target")
	}
}
