package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/twilio"
)

// bargeMsg is a speech or transcript message of call id at ts (ms).
func bargeMsg(typ, id string, ts int64, fields string) string {
	return fmt.Sprintf(`{"message":{"type":%q,"timestamp":%d,"call":{"id":%q,"orgId":"org","assistantId":"asst-1"},%s}}`, typ, ts, id, fields)
}

func started(id string, ts int64) string {
	return bargeMsg("speech-update", id, ts, `"role":"assistant","status":"started","turn":1`)
}

func partial(id string, ts int64, text string) string {
	return bargeMsg("transcript", id, ts, fmt.Sprintf(`"role":"user","transcriptType":"partial","transcript":%q`, text))
}

func (e *env) mustSend(body string) {
	e.t.Helper()
	if code, out := e.send(body); code != http.StatusOK || out != "{}" {
		e.t.Fatalf("%d %s for %s", code, out, body)
	}
}

// timeline returns call id's barge-in and vapi timeline events as
// "kind detail" lines.
func (e *env) timeline(id string) []string {
	e.t.Helper()
	if err := e.app.Events.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	evs, err := e.app.Store.Events(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Kind+" "+ev.Detail)
	}
	return out
}

// TestBargeinOnTheWebhookPath: speech and transcript messages run the
// engine per call; every judgement is counted and kept in the call's
// timeline with its reason; Vapi's user-interrupted is recorded but
// decides nothing; a call whose assistant is not speaking is not
// interrupted by another call's state.
func TestBargeinOnTheWebhookPath(t *testing.T) {
	e := newEnv(t, nil)
	t0 := time.Now().UnixMilli()
	e.mustSend(started("c1", t0))
	e.mustSend(partial("c2", t0+50, "wait a moment")) // c2's assistant is not speaking
	e.mustSend(partial("c1", t0-500, "hold on"))      // spoken before the assistant started
	e.mustSend(partial("c1", t0+100, "uh-huh"))
	e.mustSend(partial("c1", t0+200, "Wait, that's wrong"))
	e.mustSend(partial("c1", t0+300, "Wait, that's wrong, my birthday"))
	e.mustSend(bargeMsg("user-interrupted", "c1", t0+310, `"turnId":"t1"`))
	e.mustSend(bargeMsg(bargein.FinalType, "c1", t0+400, `"role":"user","transcript":"Wait, that's wrong, my birthday is in May"`))
	want := []string{
		"bargein none: stale: spoken before the assistant started",
		"bargein none: backchannel or filler only",
		"bargein interrupt: interruption phrase: wait",
		"bargein none: already interrupted in this turn",
		"vapi user-interrupted",
		"bargein none: already interrupted in this turn",
	}
	if got := e.timeline("c1"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("c1's timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := e.timeline("c2"); len(got) != 0 {
		t.Fatalf("c2 (assistant not speaking) has timeline events %q", got)
	}
	for series, want := range map[string]string{
		`voicegate_bargein_decisions_total{decision="interrupt",reason="interruption_phrase"}`: "1",
		`voicegate_bargein_decisions_total{decision="none",reason="backchannel"}`:              "1",
		`voicegate_bargein_decisions_total{decision="none",reason="stale"}`:                    "1",
		`voicegate_bargein_decisions_total{decision="none",reason="repeat"}`:                   "2",
		`voicegate_bargein_decisions_total{decision="none",reason="not_speaking"}`:             "1",
		`voicegate_bargein_decisions_total{decision="none",reason="assistant_started"}`:        "1",
	} {
		if got := e.metric(series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "birthday") || strings.Contains(logs, "that's wrong") {
		t.Fatal("a transcript's words reached the log")
	}
}

// TestBargeinLanguages: a call's language comes from its assistant, and
// Vapi's language-change-detected switches it; each language has its own
// lists.
func TestBargeinLanguages(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Bargein.Languages = map[string]bargein.Lists{"de": {Backchannels: []string{"ja", "genau"}, Interruptions: []string{"moment"}}}
		c.Bargein.Assistants = map[string]string{"asst-de": "de"}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t0 := time.Now().UnixMilli()
	de := func(typ, id string, ts int64, fields string) string {
		return fmt.Sprintf(`{"message":{"type":%q,"timestamp":%d,"call":{"id":%q,"assistantId":"asst-de"},%s}}`, typ, ts, id, fields)
	}
	e.mustSend(de("speech-update", "de1", t0, `"role":"assistant","status":"started"`))
	e.mustSend(de("transcript", "de1", t0+10, `"role":"user","transcriptType":"partial","transcript":"ja genau"`))
	e.mustSend(de("transcript", "de1", t0+20, `"role":"user","transcriptType":"partial","transcript":"Moment!"`))
	// The default language: "ja genau" is two content words.
	e.mustSend(started("en1", t0))
	e.mustSend(partial("en1", t0+10, "ja genau"))
	// A call switched to German by Vapi's detection (de-DE is de).
	e.mustSend(started("sw1", t0))
	e.mustSend(bargeMsg("language-change-detected", "sw1", t0+5, `"language":"de-DE"`))
	e.mustSend(partial("sw1", t0+10, "ja genau"))
	for id, want := range map[string]string{
		"de1": "bargein none: backchannel or filler only|bargein interrupt: interruption phrase: moment",
		"en1": "bargein interrupt: content words",
		"sw1": "bargein language: de|bargein none: backchannel or filler only",
	} {
		if got := strings.Join(e.timeline(id), "|"); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

// TestBargeinInterleavedCalls: hundreds of calls whose events interleave
// are decided independently (run under -race in CI): each call gets
// exactly one interrupt, on its own words.
func TestBargeinInterleavedCalls(t *testing.T) {
	e := newEnv(t, nil)
	const n = 300
	t0 := time.Now().UnixMilli()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprint("ic-", i)
			ts := t0 + int64(i)
			for _, body := range []string{started(id, ts), partial(id, ts-1, "stop"), partial(id, ts+1, "mm-hmm"), partial(id, ts+2, "no no"), partial(id, ts+3, "no no no")} {
				if code, out := e.send(body); code != http.StatusOK {
					t.Errorf("%s: %d %s", id, code, out)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range n {
		id := fmt.Sprint("ic-", i)
		want := "bargein none: stale: spoken before the assistant started|bargein none: backchannel or filler only|bargein interrupt: interruption phrase: no|bargein none: already interrupted in this turn"
		if got := strings.Join(e.timeline(id), "|"); got != want {
			t.Fatalf("%s: %s", id, got)
		}
	}
	if got := e.metric(`voicegate_bargein_decisions_total{decision="interrupt",reason="interruption_phrase"}`); got != fmt.Sprint(n) {
		t.Fatalf("%s interrupts counted, want %d", got, n)
	}
}

// TestHangLogsToolsInFlight: a hang is counted and logged with the call's
// tool calls under way.
func TestHangLogsToolsInFlight(t *testing.T) {
	e := newEnv(t, nil)
	e.apiDelay.Store(int64(2 * time.Second))
	e.mustSend(msg("status-update", "h1", `"status":"in-progress"`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.send(msg("tool-calls", "h1", `"toolCallList":[{"id":"tc1","type":"function","function":{"name":"getAppointment","arguments":{}}}]`))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	e.mustSend(msg("hang", "h1", ""))
	<-done
	e.mustSend(msg("hang", "h1", ""))
	logs := e.logs.String()
	if !strings.Contains(logs, `"tools_in_flight":"getAppointment=1"`) || !strings.Contains(logs, `"tools_in_flight":"none"`) {
		t.Fatalf("hang lines:\n%s", grepLines(logs, "hang"))
	}
	if got := e.metric("voicegate_hangs_total"); got != "2" {
		t.Fatalf("hangs %q", got)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBargeinTimelineInterruptsOnly: bargein.timeline: interrupts keeps
// only the interrupts in the timeline; every decision is still counted.
func TestBargeinTimelineInterruptsOnly(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Bargein.Timeline = bargein.TimelineInterrupts })
	t0 := time.Now().UnixMilli()
	e.mustSend(started("ti1", t0))
	e.mustSend(partial("ti1", t0+10, "uh-huh"))
	e.mustSend(partial("ti1", t0+20, "hold on"))
	e.mustSend(partial("ti1", t0+30, "hold on please"))
	if got := strings.Join(e.timeline("ti1"), "|"); got != "bargein interrupt: interruption phrase: hold on" {
		t.Fatalf("timeline %q", got)
	}
	if got := e.metric(`voicegate_bargein_decisions_total{decision="none",reason="repeat"}`); got != "1" {
		t.Fatalf("repeats counted %q", got)
	}
}

// TestMalformedOptionalFieldsDoNotRefuse: a tool call whose timestamp is
// true, {"at":1} or a call.status that is a number is still answered with
// its tool results; each dropped field is counted. Only a body that is not
// JSON, or a message without a usable type, is a 400.
func TestMalformedOptionalFieldsDoNotRefuse(t *testing.T) {
	e := newEnv(t, nil)
	for i, ts := range []string{`true`, `{"at":1}`, `"yesterday"`, `"2025-07-08 09:43:15"`} {
		body := fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":%s,"call":{"id":"mf%d","status":7},"toolCallList":[{"id":"tc%d","type":"function","function":{"name":"getAppointment","arguments":{"d":1}}}]}}`, ts, i, i)
		code, out := e.send(body)
		if code != http.StatusOK || !strings.Contains(out, fmt.Sprintf(`"toolCallId":"tc%d"`, i)) || !strings.Contains(out, `"result"`) {
			t.Fatalf("timestamp %s: %d %s", ts, code, out)
		}
	}
	if got := e.metric(`voicegate_dropped_fields_total{field="timestamp",type="tool-calls"}`); got != "3" {
		t.Errorf("dropped timestamps counted %q, want 3 (the fourth is a valid time without a zone)", got)
	}
	if got := e.metric(`voicegate_dropped_fields_total{field="call.status",type="tool-calls"}`); got == "" {
		t.Errorf("a dropped call.status is not counted")
	}
	for _, body := range []string{`{"message":{"type":7}}`, `not json`} {
		if code, _ := e.send(body); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", body, code)
		}
	}
}

// TestEndpointingRequestAnswered: call.endpointing.request gets
// {"timeoutSeconds": n} chosen from the assistant's last question, and the
// default when the conversation says nothing (always an answer).
func TestEndpointingRequestAnswered(t *testing.T) {
	e := newEnv(t, nil)
	for conv, want := range map[string]string{
		`[{"role":"assistant","content":"What is your date of birth?"}]`: `{"timeoutSeconds":3}`,
		`[{"role":"assistant","content":"Shall I book it?"}]`:            `{"timeoutSeconds":0.6}`,
		`[{"role":"assistant","content":"How can I help?"}]`:             `{"timeoutSeconds":1}`,
		`"garbled"`: `{"timeoutSeconds":1}`,
	} {
		body := fmt.Sprintf(`{"message":{"type":"call.endpointing.request","call":{"id":"ep1"},"messagesOpenAIFormatted":%s}}`, conv)
		if code, out := e.send(body); code != http.StatusOK || out != want {
			t.Errorf("%s: %d %s, want %s", conv, code, out, want)
		}
	}
}

// TestHandoffDestinationRequest: the first route whose criteria match
// (the destination the model asked for, the call's assistant, its squad)
// answers {"destination"}; no match is a spoken error.
func TestHandoffDestinationRequest(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.Handoff.Routes = []dispatch.HandoffRoute{
			{Name: "billing", FromAssistant: "asst-front", Destination: map[string]any{"type": "assistant", "assistantId": "asst-billing"}},
			{SquadID: "sq-1", Destination: map[string]any{"type": "assistant", "assistantName": "Nurse"}},
		}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	for fields, want := range map[string]string{
		`"call":{"id":"h1","assistantId":"asst-front"},"parameters":{"destination":"Billing"}`:                  `{"destination":{"assistantId":"asst-billing","type":"assistant"}}`,
		`"call":{"id":"h2","assistantId":"asst-other","squadId":"sq-1"},"parameters":{"destination":"billing"}`: `{"destination":{"assistantName":"Nurse","type":"assistant"}}`,
		`"call":{"id":"h3","assistantId":"asst-other"},"parameters":"garbled"`:                                  `{"error":"Sorry, I cannot hand this call over right now."}`,
	} {
		body := `{"message":{"type":"handoff-destination-request",` + fields + `}}`
		if code, out := e.send(body); code != http.StatusOK || out != want {
			t.Errorf("%s: %d %s, want %s", fields, code, out, want)
		}
	}
}

// TestCallDeletedErasesRecords: Vapi's call.deleted crypto-shreds the
// call's records (they no longer open) and is audited; other calls keep
// theirs.
func TestCallDeletedErasesRecords(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, id := range []string{"del1", "keep1"} {
		if code, out := e.send(msg("tool-calls", id, `"toolCallList":[{"id":"tc-`+id+`","type":"function","function":{"name":"getAppointment","arguments":{"d":1}}}]`)); code != 200 {
			t.Fatalf("%d %s", code, out)
		}
	}
	e.mustSend(msg("call.deleted", "del1", ""))
	open := func(id string) error {
		recs, err := e.app.Records.Store().CallRecords(ctx, id)
		if err != nil || len(recs) == 0 {
			return fmt.Errorf("records of %s: %d %v", id, len(recs), err)
		}
		_, err = e.app.Records.Open(ctx, recs[0])
		return err
	}
	if err := open("del1"); err == nil {
		t.Fatal("a deleted call's record still opens")
	}
	if err := open("keep1"); err != nil {
		t.Fatalf("another call's record: %v", err)
	}
	if !strings.Contains(e.logs.String(), "call deleted by Vapi: records erased") {
		t.Fatal("no log line for the erasure")
	}
}

// TestCampaignPredial: campaign.predial always gets {"eligible": bool}:
// true by default, false when a configured rule refuses; the decision and
// its rule are logged without the number.
func TestCampaignPredial(t *testing.T) {
	dnc := t.TempDir() + "/dnc.txt"
	os.WriteFile(dnc, []byte("+12125550100\n"), 0o600)
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.Predial = predial.Config{DoNotCallFile: dnc}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	for number, want := range map[string]string{"+12125550100": `{"eligible":false}`, "+12125550199": `{"eligible":true}`} {
		body := `{"message":{"type":"campaign.predial","campaignId":"camp-1","contact":{"number":"` + number + `","name":"Jane Roe"}}}`
		if code, out := e.send(body); code != http.StatusOK || out != want {
			t.Errorf("%s: %d %s, want %s", number, code, out, want)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"rule":"do_not_call"`) || strings.Contains(logs, "5550100") || strings.Contains(logs, "Jane") {
		t.Fatalf("pre-dial log lines:\n%s", grepLines(logs, "pre-dial"))
	}
}

// TestChatAndSessionEvents: chat.* and session.* events are kept in the
// chat's or session's timeline, ids and status only, never text.
func TestChatAndSessionEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.mustSend(`{"message":{"type":"chat.created","timestamp":1767000000000,"chat":{"id":"ch1","assistantId":"a1","sessionId":"s1","messages":[{"role":"user","message":"my SSN is 123-45-6789"}]}}}`)
	e.mustSend(`{"message":{"type":"session.updated","timestamp":1767000001000,"session":{"id":"s1","status":"active","name":"Jane"}}}`)
	if got := strings.Join(e.timeline("chat:ch1"), "|"); got != "chat chat.created assistant=a1 session=s1" {
		t.Errorf("chat timeline %q", got)
	}
	if got := strings.Join(e.timeline("session:s1"), "|"); got != "session session.updated status=active" {
		t.Errorf("session timeline %q", got)
	}
	if logs := e.logs.String(); strings.Contains(logs, "123-45") || strings.Contains(logs, "Jane") {
		t.Fatal("chat text reached the log")
	}
}

// TestAssistantRouterAPI: assistant-request asks the configured router
// API (an internal API) with the call's metadata and answers what it
// returns, validated; when it fails, is slow or answers nonsense, the
// static routes answer, inside the budget.
func TestAssistantRouterAPI(t *testing.T) {
	var answer atomic.Value
	var got atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		a := answer.Load().(string)
		if a == "slow" {
			time.Sleep(1500 * time.Millisecond)
			a = `{"assistantId":"late"}`
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, a)
	}))
	t.Cleanup(api.Close)
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.AssistantRequest.Router = &dispatch.AssistantAPIConfig{URL: api.URL + "/route", Timeout: confval.Duration(time.Second)}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	for ans, want := range map[string]string{
		`{"assistantId":"asst-vip","assistantOverrides":{"variableValues":{"tier":"gold"}},"extra":1}`: `{"assistantId":"asst-vip","assistantOverrides":{"variableValues":{"tier":"gold"}}}`,
		`{"squad":{"members":[]}}`:          `{"squad":{"members":[]}}`,
		`{"assistantId":"a","squadId":"s"}`: `{"assistantId":"asst-sales"}`, // two choices: the routes answer
		`{"assistant":"not an object"}`:     `{"assistantId":"asst-sales"}`,
		`not json`:                          `{"assistantId":"asst-sales"}`,
		"slow":                              `{"assistantId":"asst-sales"}`,
	} {
		answer.Store(ans)
		start := time.Now()
		// A new body each time (the same one would be a replay).
		code, out := e.send(msg("assistant-request", "ar1", `"phoneNumber":{"id":"pn-sales","number":"+15550001111"},"customer":{"number":"+15550002222"}`))
		if code != http.StatusOK || out != want {
			t.Errorf("router answers %s: %d %s, want %s", ans, code, out, want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("router answers %s: %v", ans, d)
		}
	}
	if b := got.Load().(string); !strings.Contains(b, `"phoneNumberId":"pn-sales"`) || !strings.Contains(b, `"callerNumber":"+15550002222"`) || !strings.Contains(b, `"calledNumber":"+15550001111"`) {
		t.Fatalf("the router API got %s", b)
	}
}

// TestPhoneCallControlThroughTwilio: phone-call-control forward and
// hang-up are executed through Twilio's REST API — here a local stand-in
// for Twilio's API (a service outside the customer's network) that checks
// the path, the basic auth and the form; Twilio failing is a 503 so that
// Vapi sends the message again.
func TestPhoneCallControlThroughTwilio(t *testing.T) {
	const acct, token, sid = "AC0123456789abcdef0123456789abcdef", "tok-0123456789abcdef0123", "CAfedcba9876543210fedcba9876543210"
	var mu sync.Mutex
	var got []string
	var fail atomic.Bool
	tw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		r.ParseForm()
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+u+":"+p+" "+r.PostForm.Encode())
		mu.Unlock()
		if fail.Load() {
			http.Error(w, `{"code":20500}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"sid":"`+sid+`","status":"in-progress"}`)
	}))
	t.Cleanup(tw.Close)
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.PhoneCallControl = twilio.RESTConfig{AccountSid: acct, AuthToken: confval.Secret{Value: token}, APIBaseURL: tw.URL, Retries: 1}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	pcc := func(fields string) string {
		return fmt.Sprintf(`{"message":{"type":"phone-call-control","timestamp":%d,"call":{"id":"pc1","phoneCallProvider":"twilio","phoneCallProviderId":%q},%s}}`, time.Now().UnixNano()%1e12+1767000000000, sid, fields)
	}
	e.mustSend(pcc(`"request":"forward","destination":{"type":"number","number":"+15550007777"}`))
	e.mustSend(pcc(`"request":"hang-up"`))
	path := "POST /2010-04-01/Accounts/" + acct + "/Calls/" + sid + ".json " + acct + ":" + token + " "
	want := []string{
		path + url.Values{"Twiml": {`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Dial><Number>+15550007777</Number></Dial></Response>`}}.Encode(),
		path + "Status=completed",
	}
	mu.Lock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Twilio got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mu.Unlock()
	fail.Store(true)
	if code, _ := e.send(pcc(`"request":"hang-up"`)); code != http.StatusServiceUnavailable {
		t.Fatalf("Twilio failing: %d, want 503", code)
	}
	// A destination Twilio cannot dial: not executed, answered (a retry
	// would fail the same way).
	fail.Store(false)
	if code, out := e.send(pcc(`"request":"forward","destination":{"type":"number","number":"call me"}`)); code != 200 || out != "{}" {
		t.Fatalf("%d %s", code, out)
	}
	if logs := e.logs.String(); strings.Contains(logs, token) {
		t.Fatal("the auth token reached the log")
	}
}

// TestKnowledgeBaseRequest: knowledge-base-request is answered from the
// knowledge base of the call's assistant: the internal search API (a local
// server here, as the customer's would be) or voicegate's own document
// store. The latest user messages are the query, the documents come back
// ranked within the budget; without a base, or when its search fails, no
// documents.
func TestKnowledgeBaseRequest(t *testing.T) {
	var q atomic.Value
	var fail atomic.Bool
	search := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		q.Store(string(b))
		if fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"documents":[{"content":"Shoes can be returned within 30 days.","similarity":0.7,"uuid":"kb-2"},{"content":"Returns policy: 30 days, receipt needed.","similarity":0.92,"uuid":"kb-1"}]}`)
	}))
	t.Cleanup(search.Close)
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.KnowledgeBase.Bases = map[string]knowledge.Base{
			"search":   {SearchAPI: &config.ToolConfig{URL: search.URL + "/search"}},
			"handbook": {},
		}
		c.Vapi.KnowledgeBase.Default = "search"
		c.Vapi.KnowledgeBase.Assistants = map[string]string{"asst-handbook": "handbook", "asst-none": ""}
		c.Vapi.KnowledgeBase.MaxDocuments = 1
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := e.app.Library.Add(context.Background(), "handbook", "en", "returns.md",
		[]byte("# Returns\n\nShoes bought in store can be returned within 60 days with the receipt.\n\n# Delivery\n\nParcels arrive in two days."), library.Markdown); err != nil {
		t.Fatal(err)
	}
	kbReq := func(i int, assistant string) string {
		return fmt.Sprintf(`{"message":{"type":"knowledge-base-request","timestamp":%d,"call":{"id":"kb1","assistantId":%q},"messagesOpenAIFormatted":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"can I return shoes?"}]}}`, 1767000000000+i, assistant)
	}
	code, out := e.send(kbReq(1, "asst-other"))
	if code != 200 || out != `{"documents":[{"content":"Returns policy: 30 days, receipt needed.","similarity":0.92,"uuid":"kb-1"}]}` {
		t.Fatalf("%d %s", code, out)
	}
	if got := q.Load().(string); got != `{"limit":1,"query":"Hi can I return shoes?"}` {
		t.Fatalf("the search API got %s", got)
	}
	code, out = e.send(kbReq(2, "asst-handbook"))
	var local knowledge.Response
	if code != 200 || json.Unmarshal([]byte(out), &local) != nil || len(local.Documents) != 1 ||
		local.Documents[0].Content != "Returns\nShoes bought in store can be returned within 60 days with the receipt." ||
		local.Documents[0].Similarity <= 0 || local.Documents[0].UUID == "" {
		t.Fatalf("local base: %d %s", code, out)
	}
	if code, out := e.send(kbReq(3, "asst-none")); code != 200 || out != `{"documents":[]}` {
		t.Fatalf("an assistant without a base: %d %s", code, out)
	}
	fail.Store(true)
	if code, out := e.send(kbReq(4, "")); code != 200 || out != `{"documents":[]}` {
		t.Fatalf("search failing: %d %s", code, out)
	}
	for labels, want := range map[string]string{`{outcome="documents",source="api"}`: "1", `{outcome="documents",source="local"}`: "1", `{outcome="error",source="api"}`: "1"} {
		if got := e.metric("voicegate_knowledge_searches_total" + labels); got != want {
			t.Errorf("searches%s = %q, want %s", labels, got, want)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "return shoes") || strings.Contains(logs, "60 days") {
		t.Fatal("the caller's words or a document reached the log")
	}
}
