package dispatch

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/twilio"
	"github.com/voicegate/voicegate/internal/vapi"
	"github.com/voicegate/voicegate/internal/webhook"
)

type review12Phone struct{ forwards, hangups int }

func (p *review12Phone) Forward(context.Context, string, string) error { p.forwards++; return nil }
func (p *review12Phone) HangUp(context.Context, string) error          { p.hangups++; return nil }

func review12Dispatcher(t *testing.T, phone PhoneController, audit func(e, s, d string)) *Dispatcher {
	t.Helper()
	now := func() time.Time { return time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC) }
	d, err := New(Config{AssistantRequest: DefaultAssistantRequestConfig(), ServerTimeout: 20 * time.Second, DryRun: true,
		Handoff: DefaultHandoffConfig()},
		Deps{Sessions: session.New(time.Hour, 100, now), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Metrics: metrics.New(func() float64 { return 0 }, func() float64 { return 0 }, func() float64 { return 0 }),
			Now:     now, Phone: phone, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func review12Decode(t *testing.T, body string) *vapi.Message {
	t.Helper()
	m, err := vapi.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m.Body = []byte(body)
	return m
}

// TestReview12PredialDryRun: voicegate simulate of a campaign.predial is
// answered {} — the one answer Vapi records as a pre-dial failure — while
// the real message gets {"eligible": true}. A dry run should answer the
// shape (without counting an attempt).
func TestReview12PredialDryRun(t *testing.T) {
	d := review12Dispatcher(t, nil, nil)
	body := `{"message":{"type":"campaign.predial","campaignId":"c1","contact":{"number":"+12125550100"}},"voicegate":{"dryRun":true}}`
	reply, err := d.Handle(context.Background(), review12Decode(t, body))
	if err != nil || !strings.Contains(string(reply.Body), `"eligible"`) {
		t.Fatalf("dry-run campaign.predial answered %s %v, want {\"eligible\": bool}", reply.Body, err)
	}
}

// TestReview12PhoneControlNotExecutedIsAudited: a forward that cannot be
// executed (a destination that is not E.164 / sip:, or a call without a
// Twilio call SID) is answered 200 {} and leaves no trace in the audit
// trail — only a Warn log. The caller is neither forwarded nor hung up;
// the audit should say so as it does for a Twilio failure.
func TestReview12PhoneControlNotExecutedIsAudited(t *testing.T) {
	for name, body := range map[string]string{
		"bad destination": `{"message":{"type":"phone-call-control","request":"forward","destination":{"type":"number","number":"5550100"},"call":{"id":"c1","phoneCallProvider":"twilio","phoneCallProviderId":"CA0123456789abcdef0123456789abcdef"}}}`,
		"no call sid":     `{"message":{"type":"phone-call-control","request":"hang-up","call":{"id":"c1","phoneCallProvider":"twilio"}}}`,
	} {
		var audited []string
		p := &review12Phone{}
		d := review12Dispatcher(t, p, func(e, s, det string) { audited = append(audited, e+" "+det) })
		reply, err := d.Handle(context.Background(), review12Decode(t, body))
		if err == nil && reply.Status == http.StatusOK && len(audited) == 0 {
			t.Errorf("%s: answered %d %s, nothing executed (%d forwards, %d hang-ups), nothing audited", name, reply.Status, reply.Body, p.forwards, p.hangups)
		}
	}
}

// TestReview12PhoneControlNonTwilioSid: phoneCallProvider absent (read as
// Twilio) and a provider id that is not a Twilio call SID: the real REST
// client refuses it before any request, and the dispatcher answers 503
// "retry" — a permanent failure presented as a transient one (with a
// backoffPlan Vapi retries it in vain), unlike the documented "a request
// that cannot be executed is logged and answered".
func TestReview12PhoneControlNonTwilioSid(t *testing.T) {
	rest := twilio.NewREST(twilio.RESTConfig{AccountSid: "AC0123456789abcdef0123456789abcdef", APIBaseURL: "http://127.0.0.1:1", Timeout: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d := review12Dispatcher(t, rest, nil)
	body := `{"message":{"type":"phone-call-control","request":"hang-up","call":{"id":"c1","phoneCallProviderId":"b7c1e6c2-vonage-uuid"}}}`
	_, err := d.Handle(context.Background(), review12Decode(t, body))
	if we, ok := err.(*webhook.Error); ok && we.Status == http.StatusServiceUnavailable {
		t.Fatalf("a call id that can never be a Twilio SID is a 503 (retry): %v", err)
	}
}

// TestReview12RouterOverridesKept: Vapi's assistant-request answer also
// takes squadOverrides and workflowOverrides; a router API answering
// {"squadId":"s1","squadOverrides":{...}} has its overrides silently
// dropped (the call runs without the caller's variableValues).
func TestReview12RouterOverridesKept(t *testing.T) {
	got, _, err := validRouterAnswer([]byte(`{"squadId":"s1","squadOverrides":{"variableValues":{"tier":"gold"}}}`))
	if err != nil || !strings.Contains(string(got), "squadOverrides") {
		t.Fatalf("answer %s %v: squadOverrides lost", got, err)
	}
}
