package vapitest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// The server under test stands in for Vapi's API, an external service.

func do(t *testing.T, s *vapitest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestVapiShapes(t *testing.T) {
	s := vapitest.New(t)
	code, a := do(t, s, "POST", "/assistant", `{"name":"A","model":{"provider":"openai","temperature":0.7,"messages":[]}}`)
	if code != 201 || a["id"] == "" || a["orgId"] != vapitest.OrgID || a["createdAt"] == "" {
		t.Fatalf("%d %v", code, a)
	}
	id := a["id"].(string)
	// PATCH replaces top-level fields whole; null clears.
	code, a = do(t, s, "PATCH", "/assistant/"+id, `{"model":{"provider":"openai"},"name":null,"firstMessage":"hi"}`)
	if code != 200 || a["model"].(map[string]any)["temperature"] != nil || a["name"] != nil || a["firstMessage"] != "hi" {
		t.Fatalf("%d %v", code, a)
	}
	code, e := do(t, s, "PATCH", "/assistant/"+id, `{"id":"x","createdAt":"y"}`)
	if code != 400 || e["error"] != "Bad Request" || e["statusCode"] != float64(400) || len(e["message"].([]any)) != 2 {
		t.Fatalf("%d %v", code, e)
	}
	code, e = do(t, s, "GET", "/assistant/nope", "")
	if code != 404 || e["message"] != "Assistant not found" {
		t.Fatalf("%d %v", code, e)
	}
	req, _ := http.NewRequest("GET", s.URL+"/assistant", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatal(resp.StatusCode)
	}
	// A phone number's PATCH keeps its provider.
	_, p := do(t, s, "POST", "/phone-number", `{"provider":"twilio","number":"+15550001111"}`)
	if code, _ := do(t, s, "PATCH", "/phone-number/"+p["id"].(string), `{"name":"x"}`); code != 400 {
		t.Fatalf("patch without provider: %d", code)
	}
	// Credentials' secrets are write-only.
	_, c := do(t, s, "POST", "/credential", `{"provider":"webhook","name":"c","authenticationPlan":{"type":"hmac","algorithm":"sha256","secretKey":"s3cr3t-value"}}`)
	if strings.Contains(toJSON(c), "s3cr3t-value") {
		t.Fatalf("secret returned: %v", c)
	}
	if n := s.Mutations(); n != 6 {
		t.Fatalf("mutations %d", n)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestSignVerifiesWithVoicegate: what Sign produces for an assistant
// whose credential is voicegate's managed plan verifies with voicegate's
// own HMAC verifier (the managed entry's defaults); after the assistant is
// repointed, the next webhook is signed with the new credential.
func TestSignVerifiesWithVoicegate(t *testing.T) {
	s := vapitest.New(t)
	const secretA, secretB = "4f9c2e71d0a8b6c3e5f7a9b1c3d5e7f90a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
	ca := s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "name": "a", "authenticationPlan": vapiapi.HMACPlan(secretA)})
	cb := s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "name": "b", "authenticationPlan": vapiapi.HMACPlan(secretB)})
	as := s.Put(vapiapi.Assistant, vapiapi.Resource{"name": "A", "server": map[string]any{"url": "https://gw.example.com/webhook/vapi", "credentialId": ca.ID()}})
	verifier := func(secret string) auth.Verifier {
		a := auth.Config{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: secret}}, Tolerance: confval.Duration(5 * time.Minute)}
		a.Complete()
		v, err := auth.NewVerifier(a)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	body := []byte(`{"message":{"type":"status-update","status":"ended"}}`)
	now := time.Now()
	h, err := s.Sign(as.ID(), body, now)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("x-timestamp") != strconv.FormatInt(now.Unix(), 10) || len(h.Get("x-signature")) != 64 {
		t.Fatalf("headers %v", h)
	}
	if err := verifier(secretA).Verify(&auth.Request{Method: "POST", Header: h, Body: body}, now); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := verifier(secretB).Verify(&auth.Request{Method: "POST", Header: h, Body: body}, now); err == nil {
		t.Fatal("verified with the other secret")
	}
	s.Set(vapiapi.Assistant, as.ID(), "server.credentialId", cb.ID())
	h, _ = s.Sign(as.ID(), body, now)
	if err := verifier(secretB).Verify(&auth.Request{Method: "POST", Header: h, Body: body}, now); err != nil {
		t.Fatalf("B: %v", err)
	}
	// Bearer plan, and an assistant without a credential.
	cc := s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "authenticationPlan": map[string]any{"type": "bearer", "token": "tok-123"}})
	s.Set(vapiapi.Assistant, as.ID(), "server.credentialId", cc.ID())
	if h, _ := s.Sign(as.ID(), body, now); h.Get("Authorization") != "Bearer tok-123" {
		t.Fatalf("bearer: %v", h)
	}
	s.Set(vapiapi.Assistant, as.ID(), "server.credentialId", nil)
	if _, err := s.Sign(as.ID(), body, now); err == nil || !strings.Contains(err.Error(), "no server.credentialId") {
		t.Fatal(err)
	}
}

func TestFaultsAndCounts(t *testing.T) {
	s := vapitest.New(t)
	s.Inject(vapitest.Fault{Method: "PATCH", Status: 429, RetryAfter: "3", Times: 2})
	if code, _ := do(t, s, "GET", "/tool", ""); code != 200 {
		t.Fatal("a GET is not a PATCH")
	}
	req, _ := http.NewRequest("PATCH", s.URL+"/tool/x", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatal(resp.StatusCode, resp.Header)
	}
	if s.Mutations() != 1 || len(s.Requests()) != 2 {
		t.Fatal(s.Mutations(), s.Requests())
	}
}

// TestSignWhileRepointed: signing a stream of webhooks while the
// assistant is repointed through the API is safe, and each signature is
// made with one of the two credentials, never a mix.
func TestSignWhileRepointed(t *testing.T) {
	s := vapitest.New(t)
	const secretA, secretB = "4f9c2e71d0a8b6c3e5f7a9b1c3d5e7f9", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
	ca := s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "authenticationPlan": vapiapi.HMACPlan(secretA)})
	cb := s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "authenticationPlan": vapiapi.HMACPlan(secretB)})
	as := s.Put(vapiapi.Assistant, vapiapi.Resource{"name": "A", "server": map[string]any{"url": "https://gw.example.com/webhook/vapi", "credentialId": ca.ID()}})
	verifier := func(secret string) auth.Verifier {
		a := auth.Config{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: secret}}, Tolerance: confval.Duration(5 * time.Minute)}
		a.Complete()
		v, _ := auth.NewVerifier(a)
		return v
	}
	both := auth.Chain{verifier(secretA), verifier(secretB)}
	done := make(chan error, 1)
	go func() {
		for i := range 50 {
			id := ca.ID()
			if i%2 == 0 {
				id = cb.ID()
			}
			req, _ := http.NewRequest("PATCH", s.URL+"/assistant/"+as.ID(), strings.NewReader(`{"server":{"url":"https://gw.example.com/webhook/vapi","credentialId":"`+id+`"}}`))
			req.Header.Set("Authorization", "Bearer "+s.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- err
				return
			}
			resp.Body.Close()
		}
		done <- nil
	}()
	body := []byte(`{"message":{"type":"speech-update"}}`)
	for range 200 {
		now := time.Now()
		h, err := s.Sign(as.ID(), body, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := both.Verify(&auth.Request{Method: "POST", Header: h, Body: body}, now); err != nil {
			t.Fatalf("a webhook signed mid-rotation does not verify: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
