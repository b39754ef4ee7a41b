package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/voicegate/voicegate/internal/twilio"
)

// TestTwilioBehindTLSProxy starts the real binary behind a TLS-terminating
// reverse proxy (httptest's TLS server): Twilio is configured with the
// proxy's https URL, voicegate listens on plain http on another port, so
// the URL it receives differs from the one signed in scheme, port and
// host. A request signed the way Twilio signs the public URL is answered
// with the configured TwiML; signed over the internal URL, or tampered,
// it is refused with 403 and the call is not recorded.
func TestTwilioBehindTLSProxy(t *testing.T) {
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load())
		r.SetXForwarded()
	}})
	defer proxy.Close()
	public := proxy.URL // https://127.0.0.1:PORT
	const token = "e2e-twilio-token-8f3a91c2d7b4"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
vapi:
  auth:
    - mode: hmac
      secrets: ["${VG_SECRET}"]
twilio:
  voice_path: /twilio/voice
  status_path: /twilio/status
  public_base_url: %s
  auth_tokens: ["${TWILIO_AUTH_TOKEN}"]
  numbers:
    "+15550001111":
      sip:
        uri: sip:assistant@example.sip.vapi.ai
        headers: {X-Twilio-CallSid: "{CallSid}"}
`, filepath.Join(dir, "data"), public)), 0o600)
	p := start(t, []string{"VG_SECRET=k3J9xQ2mV7pL5nR8wT4zAb7Cd", "TWILIO_AUTH_TOKEN=" + token}, "serve", "--config", cfg)
	defer p.stop(t)
	u, _ := url.Parse("http://" + p.addr)
	target.Store(u)

	form := url.Values{"CallSid": {"CAe2e1"}, "AccountSid": {"AC1"}, "From": {"+14155550123"}, "To": {"+15550001111"},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}}
	send := func(form url.Values, signedURL string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, public+"/twilio/voice", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(token, twilio.Canonical(signedURL, twilio.AppendValues(nil, form))))
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := send(form, public+"/twilio/voice")
	var d struct {
		Dial struct {
			Sip string `xml:"Sip"`
		} `xml:"Dial"`
	}
	if status != 200 || xml.Unmarshal([]byte(body), &d) != nil || d.Dial.Sip != "sip:assistant@example.sip.vapi.ai?X-Twilio-CallSid=CAe2e1" {
		t.Fatalf("signed over the public URL: %d %s\n%s", status, body, drain(p.logs))
	}
	// Signed over the internal URL (what a framework rebuilding it from
	// the request would check): refused.
	form.Set("CallSid", "CAe2e2")
	if status, _ := send(form, "http://"+p.addr+"/twilio/voice"); status != 403 {
		t.Fatalf("signed over the internal URL: %d", status)
	}
	// Tampered after signing: refused, nothing recorded.
	req, _ := http.NewRequest(http.MethodPost, public+"/twilio/voice", strings.NewReader(strings.Replace(form.Encode(), "CAe2e2", "CAe2e3", 1)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, twilio.Sign(token, twilio.Canonical(public+"/twilio/voice", twilio.AppendValues(nil, form))))
	resp, err := proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("tampered: %d", resp.StatusCode)
	}
	out, err := run(t, nil, "calls", "list", "--data-dir", filepath.Join(dir, "data"))
	if err != nil || !strings.Contains(out, "CAe2e1") || strings.Contains(out, "CAe2e2") || strings.Contains(out, "CAe2e3") {
		t.Fatalf("stored calls: %v\n%s", err, out)
	}
}
