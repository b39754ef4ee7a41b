package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"github.com/voicegate/voicegate/internal/confval"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	secretA = "secret-a-0123456789abcdef"
	secretB = "secret-b-0123456789abcdef"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func hmacCfg(mut func(*Config)) Config {
	a := Config{Mode: ModeHMAC, Secrets: []confval.Secret{{Value: secretA}}}
	if mut != nil {
		mut(&a)
	}
	a.Complete()
	return a
}

func mac(newHash func() hash.Hash, key, payload string) []byte {
	m := hmac.New(newHash, []byte(key))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func mustVerifier(t *testing.T, a Config) Verifier {
	t.Helper()
	v, err := NewVerifier(a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const body = `{"message":{"type":"status-update","status":"ringing","call":{"id":"c1"}}}`

func TestHMACDefaultPlan(t *testing.T) {
	ts := strconv.FormatInt(now.Unix(), 10)
	good := hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body))
	v := mustVerifier(t, hmacCfg(nil))
	cases := []struct {
		name   string
		h      http.Header
		body   string
		now    time.Time
		reason Reason // "" = accepted
	}{
		{"valid", hdr("X-Signature", good, "X-Timestamp", ts), body, now, ""},
		{"valid, uppercase hex", hdr("X-Signature", strings.ToUpper(good), "X-Timestamp", ts), body, now, ""},
		{"valid at -5m edge", hdr("X-Signature", good, "X-Timestamp", ts), body, now.Add(5 * time.Minute), ""},
		{"valid at +5m edge", hdr("X-Signature", good, "X-Timestamp", ts), body, now.Add(-5 * time.Minute), ""},
		{"no signature", hdr("X-Timestamp", ts), body, now, ReasonMissing},
		{"empty signature", hdr("X-Signature", "", "X-Timestamp", ts), body, now, ReasonMissing},
		{"no timestamp", hdr("X-Signature", good), body, now, ReasonMissing},
		{"short signature", hdr("X-Signature", good[:10], "X-Timestamp", ts), body, now, ReasonMalformed},
		{"long signature", hdr("X-Signature", good+"00", "X-Timestamp", ts), body, now, ReasonMalformed},
		{"not hex", hdr("X-Signature", strings.Repeat("zz", 32), "X-Timestamp", ts), body, now, ReasonMalformed},
		{"base64 where hex expected", hdr("X-Signature", base64.StdEncoding.EncodeToString(mac(sha256.New, secretA, ts+"."+body)), "X-Timestamp", ts), body, now, ReasonMalformed},
		{"sha512 where sha256 expected", hdr("X-Signature", hex.EncodeToString(mac(sha512.New, secretA, ts+"."+body)), "X-Timestamp", ts), body, now, ReasonMalformed},
		{"sha1 where sha256 expected", hdr("X-Signature", hex.EncodeToString(mac(sha1.New, secretA, ts+"."+body)), "X-Timestamp", ts), body, now, ReasonMalformed},
		{"two signature headers", hdr("X-Signature", good, "X-Signature", good, "X-Timestamp", ts), body, now, ReasonMalformed},
		{"timestamp not a number", hdr("X-Signature", good, "X-Timestamp", "yesterday"), body, now, ReasonMalformed},
		{"negative timestamp", hdr("X-Signature", good, "X-Timestamp", "-5"), body, now, ReasonMalformed},
		{"wrong secret", hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretB, ts+"."+body)), "X-Timestamp", ts), body, now, ReasonMismatch},
		{"body changed", hdr("X-Signature", good, "X-Timestamp", ts), body + " ", now, ReasonMismatch},
		{"re-serialised body signed", hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretA, ts+"."+strings.ReplaceAll(body, ":", ": "))), "X-Timestamp", ts), body, now, ReasonMismatch},
		{"timestamp swapped", hdr("X-Signature", good, "X-Timestamp", strconv.FormatInt(now.Unix()+1, 10)), body, now, ReasonMismatch},
		{"body only signed (no timestamp)", hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretA, body)), "X-Timestamp", ts), body, now, ReasonMismatch},
		{"stale", hdr("X-Signature", good, "X-Timestamp", ts), body, now.Add(5*time.Minute + time.Second), ReasonStale},
		{"future", hdr("X-Signature", good, "X-Timestamp", ts), body, now.Add(-5*time.Minute - time.Second), ReasonFuture},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(&Request{Method: "POST", Header: tc.h, Body: []byte(tc.body)}, tc.now)
			if got := ReasonOf(err); got != tc.reason {
				t.Fatalf("reason = %q, want %q (err %v)", got, tc.reason, err)
			}
		})
	}
}

func TestHMACTimestampUnits(t *testing.T) {
	v := mustVerifier(t, hmacCfg(nil))
	for _, ts := range []string{
		strconv.FormatInt(now.Unix(), 10),
		strconv.FormatInt(now.UnixMilli(), 10),
		strconv.FormatFloat(float64(now.Unix())+0.25, 'f', 3, 64),
		now.Format(time.RFC3339),
	} {
		sig := hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body))
		if err := v.Verify(&Request{Header: hdr("X-Signature", sig, "X-Timestamp", ts), Body: []byte(body)}, now); err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
		}
	}
	// Milliseconds out of window are stale too (not misread as seconds).
	ts := strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10)
	sig := hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body))
	if r := ReasonOf(v.Verify(&Request{Header: hdr("X-Signature", sig, "X-Timestamp", ts), Body: []byte(body)}, now)); r != ReasonStale {
		t.Fatalf("stale ms timestamp: reason %q", r)
	}
}

func TestHMACVariants(t *testing.T) {
	ts := strconv.FormatInt(now.Unix(), 10)
	b64key := base64.StdEncoding.EncodeToString([]byte(secretA))
	cases := []struct {
		name string
		cfg  Config
		h    http.Header
		want Reason
	}{
		{"sha512 base64 with prefix", hmacCfg(func(a *Config) {
			a.Algorithm, a.Encoding, a.Prefix = "sha512", "base64", "v1="
		}), hdr("X-Signature", "v1="+base64.StdEncoding.EncodeToString(mac(sha512.New, secretA, ts+"."+body)), "X-Timestamp", ts), ""},
		{"prefix required", hmacCfg(func(a *Config) { a.Prefix = "sha256=" }),
			hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body)), "X-Timestamp", ts), ReasonMalformed},
		{"sha1 hex", hmacCfg(func(a *Config) { a.Algorithm = "sha1" }),
			hdr("X-Signature", hex.EncodeToString(mac(sha1.New, secretA, ts+"."+body)), "X-Timestamp", ts), ""},
		{"base64 secret", hmacCfg(func(a *Config) {
			a.SecretBase64 = true
			a.Secrets = []confval.Secret{{Value: b64key}}
		}), hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body)), "X-Timestamp", ts), ""},
		{"base64 secret used raw is a mismatch", hmacCfg(func(a *Config) {
			a.SecretBase64 = true
			a.Secrets = []confval.Secret{{Value: b64key}}
		}), hdr("X-Signature", hex.EncodeToString(mac(sha256.New, b64key, ts+"."+body)), "X-Timestamp", ts), ReasonMismatch},
		{"method and url placeholders", hmacCfg(func(a *Config) {
			a.PayloadFormat = "{method}\n{url}\n{timestamp}\n{body}"
			a.SignatureHeader, a.TimestampHeader = "X-Hook-Sig", ptr("X-Hook-Time")
		}), hdr("X-Hook-Sig", hex.EncodeToString(mac(sha256.New, secretA, "POST\nhttps://gw.example/webhook/vapi\n"+ts+"\n"+body)), "X-Hook-Time", ts), ""},
		{"preset vapi-signature with prefix", presetCfg(), hdr("X-Vapi-Signature", "sha256="+hex.EncodeToString(mac(sha256.New, secretA, body))), ""},
		{"preset vapi-signature without prefix", presetCfg(), hdr("X-Vapi-Signature", hex.EncodeToString(mac(sha256.New, secretA, body))), ""},
		{"preset vapi-signature wrong prefix", presetCfg(), hdr("X-Vapi-Signature", "sha1="+hex.EncodeToString(mac(sha256.New, secretA, body))), ReasonMalformed},
		{"preset vapi-signature over other bytes", presetCfg(), hdr("X-Vapi-Signature", hex.EncodeToString(mac(sha256.New, secretA, body+"\n"))), ReasonMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, tc.cfg)
			err := v.Verify(&Request{Method: "POST", URL: "https://gw.example/webhook/vapi", Header: tc.h, Body: []byte(body)}, now)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}

func presetCfg() Config {
	a := Config{Preset: PresetVapiSignature, Secrets: []confval.Secret{{Value: secretA}}}
	a.Complete()
	return a
}

func TestRotation(t *testing.T) {
	ts := strconv.FormatInt(now.Unix(), 10)
	sign := func(key string) http.Header {
		return hdr("X-Signature", hex.EncodeToString(mac(sha256.New, key, ts+"."+body)), "X-Timestamp", ts)
	}
	v := mustVerifier(t, hmacCfg(func(a *Config) {
		a.Secrets = []confval.Secret{{Value: secretA, NotAfter: now.Add(time.Hour)}, {Value: secretB}}
	}))
	for _, key := range []string{secretA, secretB} {
		if err := v.Verify(&Request{Header: sign(key), Body: []byte(body)}, now); err != nil {
			t.Errorf("during rotation, %s: %v", key[:8], err)
		}
	}
	// After not_after, the old secret is refused with its own reason, the new one still works.
	later := now.Add(time.Hour + time.Second)
	tsl := strconv.FormatInt(later.Unix(), 10)
	old := hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretA, tsl+"."+body)), "X-Timestamp", tsl)
	if r := ReasonOf(v.Verify(&Request{Header: old, Body: []byte(body)}, later)); r != ReasonExpired {
		t.Fatalf("retired secret: reason %q, want %q", r, ReasonExpired)
	}
	cur := hdr("X-Signature", hex.EncodeToString(mac(sha256.New, secretB, tsl+"."+body)), "X-Timestamp", tsl)
	if err := v.Verify(&Request{Header: cur, Body: []byte(body)}, later); err != nil {
		t.Fatalf("current secret after rotation: %v", err)
	}
}

func TestTokenModes(t *testing.T) {
	bearer := Config{Mode: ModeBearer, Secrets: []confval.Secret{{Value: secretA}, {Value: secretB, NotAfter: now.Add(-time.Second)}}}
	bearer.Complete()
	noPrefix := Config{Mode: ModeBearer, Header: "X-Vapi-Secret", BearerPrefix: ptr(false), Secrets: []confval.Secret{{Value: secretA}}}
	noPrefix.Complete()
	legacy := Config{Mode: ModeSecret, Secrets: []confval.Secret{{Value: secretA}}}
	legacy.Complete()
	cases := []struct {
		name string
		cfg  Config
		h    http.Header
		want Reason
	}{
		{"bearer ok", bearer, hdr("Authorization", "Bearer "+secretA), ""},
		{"bearer scheme case-insensitive", bearer, hdr("Authorization", "bearer "+secretA), ""},
		{"bearer missing", bearer, hdr(), ReasonMissing},
		{"bearer without scheme", bearer, hdr("Authorization", secretA), ReasonMalformed},
		{"bearer basic scheme", bearer, hdr("Authorization", "Basic "+secretA), ReasonMalformed},
		{"bearer wrong token", bearer, hdr("Authorization", "Bearer "+secretA+"x"), ReasonMismatch},
		{"bearer prefix of token", bearer, hdr("Authorization", "Bearer "+secretA[:5]), ReasonMismatch},
		{"bearer retired token", bearer, hdr("Authorization", "Bearer "+secretB), ReasonExpired},
		{"bearer twice", bearer, hdr("Authorization", "Bearer "+secretA, "Authorization", "Bearer "+secretA), ReasonMalformed},
		{"bearer prefix off ok", noPrefix, hdr("X-Vapi-Secret", secretA), ""},
		{"bearer prefix off, prefixed", noPrefix, hdr("X-Vapi-Secret", "Bearer "+secretA), ReasonMismatch},
		{"legacy secret ok", legacy, hdr("x-vapi-secret", secretA), ""},
		{"legacy secret missing", legacy, hdr("Authorization", "Bearer "+secretA), ReasonMissing},
		{"legacy secret wrong", legacy, hdr("x-vapi-secret", secretB), ReasonMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mustVerifier(t, tc.cfg).Verify(&Request{Header: tc.h, Body: []byte(body)}, now)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChainAcceptsAnyAndReportsMostSpecific(t *testing.T) {
	legacy := Config{Mode: ModeSecret, Secrets: []confval.Secret{{Value: secretB}}}
	legacy.Complete()
	c, err := New([]Config{hmacCfg(nil), legacy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(&Request{Header: hdr("X-Vapi-Secret", secretB), Body: []byte(body)}, now); err != nil {
		t.Fatalf("second credential should pass: %v", err)
	}
	ts := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
	err = c.Verify(&Request{Header: hdr("X-Signature", strings.Repeat("ab", 32), "X-Timestamp", ts), Body: []byte(body)}, now)
	if r := ReasonOf(err); r != ReasonStale {
		t.Fatalf("reason %q, want stale (hmac) over missing (secret)", r)
	}
	if r := ReasonOf(Chain(nil).Verify(&Request{Header: hdr()}, now)); r != ReasonMissing {
		t.Fatalf("empty chain must refuse, got %q", r)
	}
}

// TestSignerRoundTrip checks that what simulate and bench send is accepted.
func TestSignerRoundTrip(t *testing.T) {
	bearer := Config{Mode: ModeBearer, Secrets: []confval.Secret{{Value: secretA}}}
	bearer.Complete()
	legacy := Config{Mode: ModeSecret, Secrets: []confval.Secret{{Value: secretA}}}
	legacy.Complete()
	for _, a := range []Config{
		hmacCfg(nil), presetCfg(), bearer, legacy,
		hmacCfg(func(a *Config) { a.Algorithm, a.Encoding, a.Prefix = "sha512", "base64", "sha512=" }),
		hmacCfg(func(a *Config) { a.PayloadFormat = "{method} {url} {timestamp} {body}" }),
	} {
		s, err := NewSigner(a, now)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Sign(h, "POST", "http://127.0.0.1/webhook/vapi", []byte(body), now)
		err = mustVerifier(t, a).Verify(&Request{Method: "POST", URL: "http://127.0.0.1/webhook/vapi", Header: h, Body: []byte(body)}, now)
		if err != nil {
			t.Errorf("%s/%s: signed request refused: %v", a.Mode, a.Algorithm, err)
		}
	}
	if _, err := NewSigner(hmacCfg(func(a *Config) { a.Secrets[0].NotAfter = now.Add(-time.Second) }), now); err == nil {
		t.Fatal("signer with only retired secrets must fail")
	}
}

func FuzzHMACSignatureHeader(f *testing.F) {
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add("sha256="+hex.EncodeToString(mac(sha256.New, secretA, ts+"."+body)), ts)
	f.Add(strings.Repeat("a", 64), "1")
	f.Add("sha256=", "")
	f.Add("=====", "1e300")
	f.Add("YWJj", "2026-11-29T12:00:00Z")
	f.Add("\x00\xff", "NaN")
	verifiers := []Verifier{}
	for _, a := range []Config{
		hmacCfg(func(a *Config) { a.Prefix, a.PrefixOptional = "sha256=", true }),
		hmacCfg(func(a *Config) { a.Encoding = "base64" }),
		presetCfg(),
	} {
		v, _ := NewVerifier(a)
		verifiers = append(verifiers, v)
	}
	f.Fuzz(func(t *testing.T, sig, tsv string) {
		for _, v := range verifiers {
			err := v.Verify(&Request{Header: hdr("X-Signature", sig, "X-Timestamp", tsv, "X-Vapi-Signature", sig), Body: []byte("fuzz")}, now)
			// A signature over "fuzz" is never a valid fuzz input by chance.
			if err == nil {
				t.Fatalf("accepted forged signature %q ts %q", sig, tsv)
			}
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1764417600", "1764417600123", "1764417600.5", "2026-11-29T12:00:00Z", "-1", "1e10", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, ok := ParseTimestamp(s)
		if ok && (ts.Year() < 2000 || ts.Year() > 2200) {
			t.Fatalf("%q parsed to implausible time %v", s, ts)
		}
		if !ok && !ts.IsZero() {
			t.Fatalf("%q refused but returned %v", s, ts)
		}
	})
}

func TestPresetSignerSendsBareHex(t *testing.T) {
	s, err := NewSigner(presetCfg(), now)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.Sign(h, "POST", "", []byte(body), now)
	if got, want := h.Get("X-Vapi-Signature"), hex.EncodeToString(mac(sha256.New, secretA, body)); got != want {
		t.Fatalf("preset signature %q, want the bare hex form %q", got, want)
	}
}

// TestManaged: a managed entry refuses everything until its source has a
// secret, then accepts what that secret signs; a change applies to the
// next request, in verifiers built before it (a reloaded configuration's
// too); a secret past its not_after is refused as expired.
func TestManaged(t *testing.T) {
	cfg := Config{Managed: true}
	cfg.Complete()
	if p, _ := cfg.Validate(time.Now()); len(p) != 0 {
		t.Fatal(p)
	}
	src := &SecretSource{}
	v1, err := New([]Config{cfg}, src)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	req := func(secret string) *Request {
		a := cfg
		a.Secrets = []confval.Secret{{Value: secret}}
		s, err := NewSigner(a, now)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		body := []byte(`{"message":{"type":"status-update"}}`)
		s.Sign(h, http.MethodPost, "https://gw.example.com/webhook/vapi", body, now)
		return &Request{Method: http.MethodPost, Header: h, Body: body}
	}
	const old, next = "0123456789abcdef0123456789abcdef-old", "0123456789abcdef0123456789abcdef-new"
	if err := v1.Verify(req(old), now); ReasonOf(err) != ReasonMismatch {
		t.Fatalf("no secret yet: %v", err)
	}
	src.Set([]confval.Secret{{Value: old}}, 1)
	if err := v1.Verify(req(old), now); err != nil {
		t.Fatalf("old: %v", err)
	}
	v2, _ := New([]Config{cfg}, src) // a reload
	src.Set([]confval.Secret{{Value: old, NotAfter: now.Add(time.Minute)}, {Value: next}}, 2)
	for _, v := range []Chain{v1, v2} {
		if v.Verify(req(old), now) != nil || v.Verify(req(next), now) != nil {
			t.Fatal("both secrets not accepted during the rotation")
		}
		if err := v.Verify(req(old), now.Add(2*time.Minute)); ReasonOf(err) == "" {
			t.Fatal("the old secret accepted after its not_after")
		}
	}
	if src.Generation() != 2 {
		t.Fatalf("generation %d", src.Generation())
	}
	for _, bad := range []Config{{Managed: true, Secrets: []confval.Secret{{Value: old}}}, {Managed: true, Mode: ModeBearer}, {Managed: true, Preset: PresetVapiSignature}} {
		bad.Complete()
		if p, _ := bad.Validate(now); len(p) == 0 {
			t.Errorf("%+v accepted", bad)
		}
	}
}
