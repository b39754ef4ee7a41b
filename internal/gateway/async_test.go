package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
)

// TestAsyncToolDeliveredToTheLiveCall: an async tool is answered at once
// with its holding phrase; its internal API is called from the durable
// queue with an Idempotency-Key, and the result reaches the live call as
// an add-message that triggers a response (the control URL is a local
// stand-in for Vapi's), is kept as a record of the call and in its
// timeline. A call that has ended gets nothing sent: the result is kept.
func TestAsyncToolDeliveredToTheLiveCall(t *testing.T) {
	cs := newControlServer(t)
	var mu sync.Mutex
	var keys []string
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key")+" "+r.Header.Get("X-Voicegate-Tool-Call-Id")+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"balance":"42.17 EUR"}`))
	}))
	t.Cleanup(slow.Close)
	e := asyncEnv(t, cs.URL, slow.URL, nil)
	url := cs.URL + "/6b38c32e-0000-4000-8000-0000000a5ync/control"
	tc := func(id, tcID string) string {
		return ctlMsg("tool-calls", id, url, time.Now().UnixMilli(), fmt.Sprintf(`"toolCallList":[{"id":%q,"type":"function","function":{"name":"getBalance","arguments":{"account":"DE89"}}}]`, tcID))
	}
	code, out := e.send(tc("as1", "tc-live"))
	if code != 200 || !strings.Contains(out, `"result":"I'm looking into that now; I'll let you know in a moment."`) || !strings.Contains(out, `"toolCallId":"tc-live"`) {
		t.Fatalf("immediate answer: %d %s", code, out)
	}
	got := cs.wait(t, 1)
	var m struct {
		Type    string `json:"type"`
		Message struct{ Role, Content string }
		Trigger bool `json:"triggerResponseEnabled"`
	}
	if err := json.Unmarshal([]byte(got[0][strings.Index(got[0], "{"):]), &m); err != nil || m.Type != "add-message" || m.Message.Role != "system" || !m.Trigger ||
		!strings.Contains(m.Message.Content, `{"balance":"42.17 EUR"}`) || !strings.Contains(m.Message.Content, "getBalance") {
		t.Fatalf("control message %s (%v)", got[0], err)
	}
	mu.Lock()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "vgat_") || !strings.Contains(keys[0], " tc-live {\"account\":\"DE89\"}") {
		t.Fatalf("internal API requests %q", keys)
	}
	mu.Unlock()
	// The answer is kept with the call, sealed.
	waitFor(t, func() bool {
		return strings.Contains(strings.Join(e.timeline("as1"), "\n"), "async getBalance: result delivered by add-message")
	})
	recs, err := e.app.Records.Store().CallRecords(context.Background(), "as1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if b, err := e.app.Records.Open(context.Background(), r); err == nil && strings.Contains(string(b), "42.17 EUR") && strings.Contains(string(b), "async_ok") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no record of the async result among %d records", len(recs))
	}

	// An ended call: nothing is sent; the result is kept.
	e.mustSend(msg("status-update", "as2", `"status":"in-progress"`))
	e.mustSend(msg("end-of-call-report", "as2", `"endedReason":"customer-ended-call"`))
	if code, out := e.send(tc("as2", "tc-ended")); code != 200 || !strings.Contains(out, "looking into that") {
		t.Fatalf("%d %s", code, out)
	}
	waitFor(t, func() bool {
		return strings.Contains(strings.Join(e.timeline("as2"), "\n"), "result kept with the call")
	})
	cs.wait(t, 1)
	if logs := e.logs.String(); strings.Contains(logs, "DE89") || strings.Contains(logs, "42.17") || strings.Contains(logs, "0000000a5ync") {
		t.Fatal("arguments, a result or the control URL reached the log")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// asyncEnv is an env with the async tool getBalance (its internal API at
// apiURL) and the control URLs of the stand-in at controlURL allowed.
func asyncEnv(t *testing.T, controlURL, apiURL string, mut func(*config.Config)) *env {
	t.Helper()
	return newEnv(t, func(c *config.Config) {
		c.CallControl.AllowedHosts = []string{strings.TrimPrefix(controlURL, "http://")}
		c.Tools = append(c.Tools, config.ToolConfig{Name: "getBalance", URL: apiURL + "/balance", Async: true})
		if mut != nil {
			mut(c)
		}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
}
