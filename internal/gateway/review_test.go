package gateway_test

// Regression tests from the adversarial review of issue 11: each failed
// on the reviewed change and names the defect it showed.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
)

// TestReviewFinalOnlyInterruptIsUnmuted: with the README's actions (mute on
// interrupt, unmute on final) and an assistant that sends only final
// transcripts (policy rule 7), an interrupt decided on the final mutes the
// assistant and nothing ever unmutes it: Decide sets AwaitFinal =
// !IsFinal() and Final only when AwaitFinal was already set.
func TestReviewFinalOnlyInterruptIsUnmuted(t *testing.T) {
	cs := newControlServer(t)
	e := newEnv(t, withControl(cs, "", []bargein.Action{
		{On: bargein.OnInterrupt, Do: bargein.DoMute},
		{On: bargein.OnFinal, Do: bargein.DoUnmute},
	}))
	url := cs.URL + "/6b38c32e-0000-4000-8000-0000000f1a11/control"
	t0 := time.Now().UnixMilli()
	e.mustSend(ctlMsg("speech-update", "fo1", url, t0, `"role":"assistant","status":"started"`))
	e.mustSend(ctlMsg(bargein.FinalType, "fo1", url, t0+100, `"role":"user","transcript":"Wait, that's wrong, it is May"`))
	time.Sleep(300 * time.Millisecond)
	cs.mu.Lock()
	got := append([]string(nil), cs.got...)
	cs.mu.Unlock()
	muted := 0
	for _, g := range got {
		if strings.Contains(g, "mute-assistant") && !strings.Contains(g, "unmute") {
			muted++
		}
		if strings.Contains(g, "unmute-assistant") {
			muted--
		}
	}
	if muted != 0 {
		t.Fatalf("the assistant is left muted after a final-only interrupt: %q", got)
	}
}

// TestReviewCorrectionActionAfterAnotherPhrase: the README's "caller
// corrects information" action (phrases: actually, that's wrong, that is
// wrong) does not fire for "No, that's wrong": Decision.Phrase holds only
// the first interruption phrase found ("no").
func TestReviewCorrectionActionAfterAnotherPhrase(t *testing.T) {
	cs := newControlServer(t)
	e := newEnv(t, withControl(cs, "", []bargein.Action{
		{On: bargein.OnInterrupt, Phrases: []string{"actually", "that's wrong", "that is wrong"}, Do: bargein.DoAddMessage, Content: "The caller is correcting information."},
	}))
	url := cs.URL + "/6b38c32e-0000-4000-8000-00000000c0bb/control"
	t0 := time.Now().UnixMilli()
	e.mustSend(ctlMsg("speech-update", "cp1", url, t0, `"role":"assistant","status":"started"`))
	e.mustSend(ctlMsg("transcript", "cp1", url, t0+100, `"role":"user","transcriptType":"partial","transcript":"No, that's wrong"`))
	cs.wait(t, 1)
}

// TestReviewAsyncResultDeliveredOnceWhenVapiIsSlow: Vapi acts on an
// add-message but answers after call_control.timeout. The client does not
// retry it (it may have acted) — but the Deliverer returns the error and the
// durable queue retries the delivery, so the caller gets the result (with
// personal data) spoken/added again: "delivered exactly once" does not hold.
func TestReviewAsyncResultDeliveredOnceWhenVapiIsSlow(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b)) // Vapi has acted on it
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // and answers late
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(ctl.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"balance":"42.17 EUR"}`))
	}))
	t.Cleanup(api.Close)
	e := asyncEnv(t, ctl.URL, api.URL, func(c *config.Config) {
		c.CallControl.Timeout = confval.Duration(100 * time.Millisecond)
	})
	url := ctl.URL + "/6b38c32e-0000-4000-8000-0000000510w0/control"
	body := ctlMsg("tool-calls", "slow1", url, time.Now().UnixMilli(), fmt.Sprintf(`"toolCallList":[{"id":%q,"type":"function","function":{"name":"getBalance","arguments":{"account":"DE89"}}}]`, "tc-slow"))
	if code, out := e.send(body); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	time.Sleep(6 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the async result reached the call %d times: %q", len(got), got)
	}
}

// TestReviewSlowControlURLDelaysOtherCalls: barge-in actions of every call
// go through 8 workers, one message at a time each; a call whose control
// endpoint hangs (up to timeout x (retries+1) for an idempotent mute) holds
// up the mutes of every other call hashed to its worker. A mute that should
// take milliseconds takes seconds for unrelated calls.
func TestReviewSlowControlURLDelaysOtherCalls(t *testing.T) {
	var mu sync.Mutex
	at := map[string]time.Time{}
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if strings.Contains(r.URL.Path, "slow") {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		mu.Lock()
		at[r.URL.Path] = time.Now()
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(ctl.Close)
	e := newEnv(t, func(c *config.Config) {
		c.CallControl.AllowedHosts = []string{strings.TrimPrefix(ctl.URL, "http://")}
		c.Bargein.Actions = []bargein.Action{{On: bargein.OnInterrupt, Do: bargein.DoMute}}
	})
	t0 := time.Now().UnixMilli()
	send := func(id, path string) {
		url := ctl.URL + path
		e.mustSend(ctlMsg("speech-update", id, url, t0, `"role":"assistant","status":"started"`))
		e.mustSend(ctlMsg("transcript", id, url, t0+100, `"role":"user","transcriptType":"partial","transcript":"stop"`))
	}
	send("hol-slow", "/slow/control")
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	const n = 40
	for i := range n {
		send(fmt.Sprintf("hol-%d", i), fmt.Sprintf("/fast-%d/control", i))
	}
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	var late []string
	for i := range n {
		p := fmt.Sprintf("/fast-%d/control", i)
		if tm, ok := at[p]; !ok || tm.Sub(start) > time.Second {
			late = append(late, p)
		}
	}
	if len(late) > 0 {
		t.Fatalf("%d calls' mutes were held up > 1 s by another call's slow control URL: %v", len(late), late)
	}
}

// TestReviewPurgedCallsAsyncJobStopsUsingItsData: a call is purged (right
// to erasure) while its async tool call is still being retried. The
// queued arguments are sealed with the records keyring only, not bound to
// the call's erasure secret: the purge does not reach them, and the queue
// keeps sending the erased caller's arguments to the internal API (and
// would deliver the answer) until the deadline — up to 24 h.
func TestReviewPurgedCallsAsyncJobStopsUsingItsData(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	e := newEnv(t, func(c *config.Config) {
		c.Tools = append(c.Tools, config.ToolConfig{Name: "getBalance", URL: api.URL + "/balance", Async: true})
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	body := ctlMsg("tool-calls", "purge1", "https://x.vapi.ai/6b38c32e-0000-4000-8000-00000000e4a5/control", time.Now().UnixMilli(),
		`"toolCallList":[{"id":"tc-p","type":"function","function":{"name":"getBalance","arguments":{"account":"DE89-SECRET"}}}]`)
	if code, out := e.send(body); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) >= 1 })
	if _, err := e.app.Records.Purge(t.Context(), "purge1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(bodies)
	mu.Unlock()
	time.Sleep(4 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) > before {
		t.Fatalf("after the call was purged, its arguments were sent %d more times: %q", len(bodies)-before, bodies[before:])
	}
}

// TestReviewVapiErrorEchoDoesNotLogTheResult: Vapi refuses a control
// message with a 400 whose body quotes what it received (as validation
// errors commonly do). callcontrol.Error quotes the first 200 bytes of
// that answer (only the URL's path and the key are scrubbed), and the
// delivery's retry log line prints the error: the async tool's result —
// personal data — reaches the log.
func TestReviewVapiErrorEchoDoesNotLogTheResult(t *testing.T) {
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":["invalid message: %s"]}`, strings.ReplaceAll(string(b), `"`, `'`))
	}))
	t.Cleanup(ctl.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"balance":"42.17 EUR"}`))
	}))
	t.Cleanup(api.Close)
	e := asyncEnv(t, ctl.URL, api.URL, nil)
	url := ctl.URL + "/6b38c32e-0000-4000-8000-0000000ec4o0/control"
	body := ctlMsg("tool-calls", "echo1", url, time.Now().UnixMilli(), `"toolCallList":[{"id":"tc-e","type":"function","function":{"name":"getBalance","arguments":{"account":"DE89"}}}]`)
	if code, out := e.send(body); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), "async tool result refused by Vapi") })
	if logs := e.logs.String(); strings.Contains(logs, "42.17") {
		t.Fatalf("the async result reached the log:\n%s", grepLines(logs, "42.17"))
	}
}
