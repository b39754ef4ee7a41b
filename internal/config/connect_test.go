package config

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/vapi"
)

// readmeBlock returns the fenced block that follows the HTML comment
// marker in README.md.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "<!-- "+marker+" -->\n```")
	if !ok {
		t.Fatalf("README.md has no block marked %q", marker)
	}
	_, after, _ = strings.Cut(after, "\n") // the fence's language
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("block %q is not closed", marker)
	}
	return block
}

// hmacPlan is Vapi's HMACAuthenticationPlan, as the README's credential
// writes it.
type hmacPlan struct {
	Type              string `json:"type"`
	SecretKey         string `json:"secretKey"`
	Algorithm         string `json:"algorithm"`
	SignatureHeader   string `json:"signatureHeader"`
	TimestampHeader   string `json:"timestampHeader"`
	IncludeTimestamp  *bool  `json:"includeTimestamp"`
	PayloadFormat     string `json:"payloadFormat"`
	SignatureEncoding string `json:"signatureEncoding"`
	SignaturePrefix   string `json:"signaturePrefix"`
	SecretIsBase64    bool   `json:"secretIsBase64"`
}

// vapiSign signs a request as Vapi documents its HMAC plan (defaults
// applied), independently of voicegate's signer: the test checks the
// README's mapping, not voicegate against itself.
func vapiSign(t *testing.T, p hmacPlan, h http.Header, body []byte, ts string) {
	t.Helper()
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	var mk func() hash.Hash
	switch p.Algorithm {
	case "sha256":
		mk = sha256.New
	case "sha512":
		mk = sha512.New
	case "sha1":
		mk = sha1.New
	default:
		t.Fatalf("algorithm %q", p.Algorithm)
	}
	key := []byte(p.SecretKey)
	if p.SecretIsBase64 {
		var err error
		if key, err = base64.StdEncoding.DecodeString(p.SecretKey); err != nil {
			t.Fatal(err)
		}
	}
	payload := strings.NewReplacer("{timestamp}", ts, "{body}", string(body), "{method}", "POST").Replace(or(p.PayloadFormat, "{timestamp}.{body}"))
	m := hmac.New(mk, key)
	m.Write([]byte(payload))
	sig := hex.EncodeToString(m.Sum(nil))
	if p.SignatureEncoding == "base64" {
		sig = base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	h.Set(or(p.SignatureHeader, "x-signature"), p.SignaturePrefix+sig)
	if p.IncludeTimestamp == nil || *p.IncludeTimestamp {
		h.Set(or(p.TimestampHeader, "x-timestamp"), ts)
	}
}

// TestREADMEConnectVapiCredentialVerifies: the credential the README tells
// operators to create in Vapi signs requests that the configuration the
// README shows accepts — with the timestamp in seconds or milliseconds —
// and a request signed with another secret is refused.
func TestREADMEConnectVapiCredentialVerifies(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	var cred struct {
		Provider string   `json:"provider"`
		Plan     hmacPlan `json:"authenticationPlan"`
	}
	if err := json.Unmarshal([]byte(readmeBlock(t, readme, "connect-vapi:credential")), &cred); err != nil {
		t.Fatalf("the README's credential is not JSON: %v", err)
	}
	if cred.Provider != "webhook" || cred.Plan.Type != "hmac" || cred.Plan.SecretKey == "" {
		t.Fatalf("credential: %+v", cred)
	}
	const secret = "c1b3f0a9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1"
	cred.Plan.SecretKey = secret // the placeholder stands for VAPI_WEBHOOK_SECRET's value
	cfg, err := Parse([]byte(readmeBlock(t, readme, "connect-vapi:config")), Options{Getenv: func(k string) string {
		if k == "VAPI_WEBHOOK_SECRET" {
			return secret
		}
		return ""
	}})
	if err != nil {
		t.Fatalf("the README's configuration: %v", err)
	}
	chain, err := auth.New(cfg.Vapi.Auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"message":{"type":"status-update","status":"in-progress","call":{"id":"c1"}}}`)
	now := time.Now()
	for _, ts := range []string{strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.UnixMilli(), 10)} {
		h := http.Header{}
		vapiSign(t, cred.Plan, h, body, ts)
		r := &auth.Request{Method: http.MethodPost, Header: h, Body: body, PublicURL: cfg.Vapi.PublicURL}
		if err := chain.Verify(r, now); err != nil {
			t.Errorf("timestamp %s: the README's credential does not verify against its configuration: %v", ts, err)
		}
	}
	wrong := cred.Plan
	wrong.SecretKey = strings.Repeat("e", 64)
	h := http.Header{}
	vapiSign(t, wrong, h, body, strconv.FormatInt(now.Unix(), 10))
	if err := chain.Verify(&auth.Request{Method: http.MethodPost, Header: h, Body: body}, now); err == nil {
		t.Error("another secret verifies: the test proves nothing")
	}
	if cfg.Vapi.ServerTimeout.D() != 20*time.Second {
		t.Errorf("the README's server_timeout %s must match the timeoutSeconds it shows (20)", cfg.Vapi.ServerTimeout.D())
	}
}

// TestREADMEServerMessagesAreReal: every message type the README asks
// operators to enable is one voicegate knows.
func TestREADMEServerMessagesAreReal(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), `"serverMessages": [`)
	if !ok {
		t.Fatal("README.md shows no serverMessages list")
	}
	list, _, _ := strings.Cut(after, "]")
	var types []string
	if err := json.Unmarshal([]byte("["+list+"]"), &types); err != nil || len(types) == 0 {
		t.Fatalf("serverMessages list: %v", err)
	}
	for _, typ := range types {
		if vapi.MetricType(typ) == "unknown" {
			t.Errorf("serverMessages lists %q, which is not a Vapi message type", typ)
		}
	}
}
