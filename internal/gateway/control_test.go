package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/callcontrol"
	"github.com/voicegate/voicegate/internal/config"
)

// controlServer stands in for Vapi's Live Call Control endpoint (a
// service outside the customer's network): it records every message it
// receives, by call.
type controlServer struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string // "path auth body"
	fail bool
}

func newControlServer(t *testing.T) *controlServer {
	cs := &controlServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil {
			t.Errorf("control request %s %q %q", r.Method, r.Header.Get("Content-Type"), b)
		}
		cs.mu.Lock()
		cs.got = append(cs.got, r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(b))
		fail := cs.fail
		cs.mu.Unlock()
		if fail {
			http.Error(w, `{"message":"call not found"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(cs.Close)
	return cs
}

// wait returns the messages received once there are n (or fails after 5 s).
func (cs *controlServer) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs.mu.Lock()
		got := append([]string(nil), cs.got...)
		cs.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%d control messages, want %d: %q", len(got), n, got)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func withControl(cs *controlServer, key string, acts []bargein.Action) func(*config.Config) {
	return func(c *config.Config) {
		c.CallControl.AllowedHosts = []string{strings.TrimPrefix(cs.URL, "http://")}
		c.CallControl.BearerKey = callcontrol.Key(key)
		c.Bargein.Actions = acts
	}
}

func ctlMsg(typ, id, controlURL string, ts int64, fields string) string {
	return fmt.Sprintf(`{"message":{"type":%q,"timestamp":%d,"call":{"id":%q,"monitor":{"listenUrl":"wss://x.vapi.ai/l","controlUrl":%q}},%s}}`, typ, ts, id, controlURL, fields)
}

// TestBargeinActionsReachTheControlURL: configured actions send the right
// control messages, with the bearer key, to the call's own control URL —
// mute on the interrupt, a system message when the caller corrects
// something, unmute on the caller's final transcript — in that order, and
// each one's latency is in the call's timeline. A control URL outside the
// allowlist gets nothing, and is never logged.
func TestBargeinActionsReachTheControlURL(t *testing.T) {
	cs := newControlServer(t)
	yes := true
	e := newEnv(t, withControl(cs, "pk-test-0123456789", []bargein.Action{
		{On: bargein.OnInterrupt, Do: bargein.DoMute},
		{On: bargein.OnInterrupt, Phrases: []string{"actually", "that's wrong"}, Do: bargein.DoAddMessage, Content: "The caller is correcting information: confirm the corrected value.", TriggerResponse: &yes},
		{On: bargein.OnFinal, Do: bargein.DoUnmute},
	}))
	url := cs.URL + "/6b38c32e-0000-4000-8000-00000000c0de/control"
	t0 := time.Now().UnixMilli()
	e.mustSend(ctlMsg("speech-update", "k1", url, t0, `"role":"assistant","status":"started"`))
	e.mustSend(ctlMsg("transcript", "k1", url, t0+100, `"role":"user","transcriptType":"partial","transcript":"Actually, that's wrong"`))
	e.mustSend(ctlMsg("transcript", "k1", url, t0+200, `"role":"user","transcriptType":"partial","transcript":"Actually, that's wrong, it is May"`))
	e.mustSend(ctlMsg("transcript", "k1", url, t0+300, `"role":"user","transcriptType":"final","transcript":"Actually, that's wrong, it is May fifth"`))
	got := cs.wait(t, 3)
	path := "/6b38c32e-0000-4000-8000-00000000c0de/control Bearer pk-test-0123456789 "
	want := []string{
		path + `{"type":"control","control":"mute-assistant"}`,
		path + `{"type":"add-message","message":{"role":"system","content":"The caller is correcting information: confirm the corrected value."},"triggerResponseEnabled":true}`,
		path + `{"type":"control","control":"unmute-assistant"}`,
	}
	for i := range want {
		if !sameJSONLine(got[i], want[i]) {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	var ctl []string
	deadline := time.Now().Add(5 * time.Second)
	for len(ctl) < 3 && time.Now().Before(deadline) {
		ctl = ctl[:0]
		for _, l := range e.timeline("k1") {
			if strings.HasPrefix(l, "control ") {
				ctl = append(ctl, l)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(ctl) != 3 || !strings.HasPrefix(ctl[0], "control mute-assistant sent in ") || !strings.Contains(ctl[0], "ms after the decision (interruption phrase: actually)") ||
		!strings.HasPrefix(ctl[2], "control unmute-assistant sent in ") || !strings.Contains(ctl[2], "(the caller's final transcript)") {
		t.Fatalf("control events in the timeline: %q", ctl)
	}
	t.Logf("control events: %q", ctl)
	if v := e.metric(`voicegate_control_messages_total{outcome="ok",type="control"}`); v != "2" {
		t.Errorf("control messages ok %q", v)
	}
	if v := e.metric(`voicegate_control_latency_seconds_count{type="control"}`); v != "2" {
		t.Errorf("control latency observations %q", v)
	}

	// A control URL outside the allowlist: refused, nothing sent.
	bad := "https://evil.example/6b38c32e-0000-4000-8000-00000000bad0/control"
	e.mustSend(ctlMsg("speech-update", "k2", bad, t0, `"role":"assistant","status":"started"`))
	e.mustSend(ctlMsg("transcript", "k2", bad, t0+100, `"role":"user","transcriptType":"partial","transcript":"stop"`))
	time.Sleep(100 * time.Millisecond)
	cs.wait(t, 3)
	logs := e.logs.String()
	if !strings.Contains(logs, "control URL refused") || strings.Contains(logs, "00000000bad0") || strings.Contains(logs, "00000000c0de") || strings.Contains(logs, "pk-test-0123456789") {
		t.Fatalf("the refusal is logged, without URL or key:\n%s", grepLines(logs, "control"))
	}
}

// TestBargeinActionFailureInTimeline: a control message Vapi refuses is
// logged and kept in the timeline as failed, and counted.
func TestBargeinActionFailureInTimeline(t *testing.T) {
	cs := newControlServer(t)
	cs.fail = true
	e := newEnv(t, withControl(cs, "", []bargein.Action{{On: bargein.OnInterrupt, Do: bargein.DoSay, Content: "Sorry, go ahead."}}))
	url := cs.URL + "/6b38c32e-0000-4000-8000-00000000f000/control"
	t0 := time.Now().UnixMilli()
	e.mustSend(ctlMsg("speech-update", "f1", url, t0, `"role":"assistant","status":"started"`))
	e.mustSend(ctlMsg("transcript", "f1", url, t0+100, `"role":"user","transcriptType":"partial","transcript":"hold on"`))
	got := cs.wait(t, 1)
	if !sameJSONLine(got[0], `/6b38c32e-0000-4000-8000-00000000f000/control  {"type":"say","content":"Sorry, go ahead.","endCallAfterSpoken":false}`) {
		t.Fatalf("say: %s", got[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && e.metric(`voicegate_control_messages_total{outcome="http_error",type="say"}`) != "1" {
		time.Sleep(5 * time.Millisecond)
	}
	for time.Now().Before(deadline) && !strings.Contains(strings.Join(e.timeline("f1"), "\n"), "control say failed") {
		time.Sleep(5 * time.Millisecond)
	}
	if tl := strings.Join(e.timeline("f1"), "\n"); !strings.Contains(tl, "control say failed after ") || !strings.Contains(tl, "(http_error, 1 attempts)") {
		t.Fatalf("timeline:\n%s", tl)
	}
}

// sameJSONLine compares "path auth {json}" lines, the JSON by value.
func sameJSONLine(got, want string) bool {
	gi, wi := strings.Index(got, "{"), strings.Index(want, "{")
	if gi < 0 || wi < 0 || got[:gi] != want[:wi] {
		return false
	}
	var g, w any
	if json.Unmarshal([]byte(got[gi:]), &g) != nil || json.Unmarshal([]byte(want[wi:]), &w) != nil {
		return false
	}
	return fmt.Sprint(g) == fmt.Sprint(w)
}
