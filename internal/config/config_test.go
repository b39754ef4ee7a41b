package config

import (
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/tools"

	"encoding/base64"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "voicegate.yaml"), Options{Getenv: env(map[string]string{
		"VAPI_HMAC_SECRET": "f7Kq2Zp9Lr4Xw8Mv3Ty6Bn", "APPOINTMENTS_API_TOKEN": "Bearer internal-token",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Vapi.Auth) != 1 || c.Vapi.Auth[0].Secrets[0].Value != "f7Kq2Zp9Lr4Xw8Mv3Ty6Bn" {
		t.Fatalf("auth not loaded: %+v", c.Vapi.Auth)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("the example must load without warnings: %v", c.Warnings)
	}
	if c.Tools[0].Headers["Authorization"].Value != "Bearer internal-token" || c.Tools[0].Timeout.D() != 2*time.Second {
		t.Fatalf("tool: %+v", c.Tools[0])
	}
	if c.Vapi.AssistantRequest.Routes[1].Destination["number"] != "+15550003333" {
		t.Fatalf("routes: %+v", c.Vapi.AssistantRequest.Routes)
	}
}

func TestMinimalConfigDefaults(t *testing.T) {
	c, err := Parse([]byte("vapi:\n  auth:\n    - mode: hmac\n      secrets: [\"${S}\"]\n"), Options{Getenv: env(map[string]string{"S": "k3J9xQ2mV7pL5nR8wT4z"})})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Vapi.Auth[0]
	if a.Algorithm != "sha256" || a.SignatureHeader != "x-signature" || a.TimestampHeaderName() != "x-timestamp" ||
		a.PayloadFormat != "{timestamp}.{body}" || a.Encoding != "hex" || a.Tolerance.D() != 5*time.Minute {
		t.Fatalf("Vapi HMAC plan defaults not applied: %+v", a)
	}
	if c.Listen != "127.0.0.1:3000" || c.Vapi.Path != "/webhook/vapi" || c.Vapi.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	// An empty timestamp header means none, and the payload defaults to the body.
	c, err = Parse([]byte("vapi:\n  auth:\n    - mode: hmac\n      timestamp_header: \"\"\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Vapi.Auth[0].TimestampHeaderName() != "" || c.Vapi.Auth[0].PayloadFormat != "{body}" {
		t.Fatalf("no-timestamp plan: %+v", c.Vapi.Auth[0])
	}
}

func problems(t *testing.T, yaml string, o Options) []string {
	t.Helper()
	_, err := Parse([]byte(yaml), o)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestRejections(t *testing.T) {
	const okAuth = "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"
	cases := []struct {
		name, yaml string
		want       string
	}{
		{"no credential (fail closed)", "listen: 127.0.0.1:3000\n", "no credential configured"},
		{"unknown key", okAuth + "lisen: 1\n", `line 5: unknown key "lisen"`},
		{"unknown nested key", "vapi:\n  auth:\n    - mode: hmac\n      secret: x\n", `line 4: unknown key "secret"`},
		{"unset env", "vapi:\n  auth:\n    - mode: hmac\n      secrets: [\"${NOPE}\"]\n", "environment variable NOPE is not set"},
		{"short secret", "vapi:\n  auth:\n    - mode: bearer\n      secrets: [short]\n", "at least 16 are required"},
		{"no secrets", "vapi:\n  auth:\n    - mode: secret\n", "at least one secret is required"},
		{"all secrets retired", "vapi:\n  auth:\n    - mode: secret\n      secrets: [{value: k3J9xQ2mV7pL5nR8wT4z, not_after: 2001-01-01T00:00:00Z}]\n", "every secret is past its not_after"},
		{"bad not_after", "vapi:\n  auth:\n    - mode: secret\n      secrets: [{value: k3J9xQ2mV7pL5nR8wT4z, not_after: tomorrow}]\n", "not an RFC 3339 time"},
		{"bad mode", "vapi:\n  auth:\n    - mode: basic\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", `"basic" is not one of hmac, bearer, secret`},
		{"bad algorithm", "vapi:\n  auth:\n    - mode: hmac\n      algorithm: md5\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", `"md5" is not one of`},
		{"bad encoding", "vapi:\n  auth:\n    - mode: hmac\n      encoding: b32\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", `"b32" is not hex or base64`},
		{"payload without body", "vapi:\n  auth:\n    - mode: hmac\n      payload_format: \"{timestamp}\"\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "must contain {body}"},
		{"unsigned timestamp", "vapi:\n  auth:\n    - mode: hmac\n      payload_format: \"{body}\"\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "could be forged"},
		{"unknown placeholder", "vapi:\n  auth:\n    - mode: hmac\n      payload_format: \"{timestamp}.{svix-id}.{body}\"\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "unknown placeholder {svix-id}"},
		{"bad base64 secret", "vapi:\n  auth:\n    - mode: hmac\n      secret_base64: true\n      secrets: [\"!!!not-base64-at-all!!!\"]\n", "not valid base64"},
		{"hmac fields on bearer", "vapi:\n  auth:\n    - mode: bearer\n      algorithm: sha256\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "apply to hmac mode only"},
		{"duration without unit", okAuth + "sessions:\n  ttl: 60\n", "is not a duration"},
		{"public listen without TLS", okAuth + "listen: 0.0.0.0:3000\n", "plain HTTP on non-loopback"},
		{"half TLS", okAuth + "tls:\n  cert_file: a.pem\n", "cert_file and key_file must both be set"},
		{"tls 1.1", okAuth + "tls:\n  min_version: \"1.1\"\n", `"1.1" is not 1.2 or 1.3`},
		{"tool timeout too long", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    timeout: 20s\n", "must stay below vapi.server_timeout"},
		{"phone control attempts past the server timeout", okAuth + "  phone_call_control: {account_sid: AC0123456789abcdef0123456789abcdef, auth_token: k3J9xQ2mV7pL5nR8wT4z, timeout: 8s, retries: 2}\n", "(24s in all) must stay below vapi.server_timeout"},
		{"managed entry with secrets", "vapi:\n  auth:\n    - managed: true\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "leave secrets out"},
		{"two managed entries", "vapi:\n  auth:\n    - managed: true\n    - managed: true\n", "at most one entry may be managed"},
		{"rotation without a managed entry", okAuth + "  rotation: {every: 90d}\n", "mark one vapi.auth entry managed"},
		{"rotation without vapi.api", "vapi:\n  auth: [{managed: true}]\n  public_url: https://gw.example.com\n  rotation: {every: 90d}\n", "vapi.rotation.every: needs vapi.api"},
		{"rotation without public_url", "vapi:\n  auth: [{managed: true}]\n  api: {key: k3J9xQ2mV7pL5nR8wT4zAb7Cd}\n  rotation: {every: 90d}\n", "vapi.rotation.every: needs vapi.public_url"},
		{"rotation grace longer than every", "vapi:\n  auth: [{managed: true}]\n  rotation: {every: 2h, grace: 3h}\n", "must be shorter than every"},
		{"knowledge base: default not a base", okAuth + "  knowledge_base: {bases: {a: {}}, default: b}\n", `default: "b" is not one of bases`},
		{"knowledge base: unknown language", okAuth + "  knowledge_base: {bases: {a: {language: xx}}}\n", `language "xx" is not one of`},
		{"tool bad name", okAuth + "tools:\n  - name: \"a b\"\n    url: http://127.0.0.1:1/x\n", "must match"},
		{"tool duplicate", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n  - name: t\n    url: http://127.0.0.1:1/y\n", "duplicate tool"},
		{"tool relative url", okAuth + "tools:\n  - name: t\n    url: /x\n", "not an absolute http(s) URL"},
		{"tool url credentials", okAuth + "tools:\n  - name: t\n    url: http://u:p@127.0.0.1/x\n", "credentials in the URL"},
		{"tool header env unset", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    headers:\n      X-Key: {env: NOPE}\n", "environment variable NOPE is not set"},
		{"tool header file missing", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    headers:\n      X-Key: {file: /nonexistent/key}\n", "no such file"},
		{"tool bad schema", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    schema: {type: 12}\n", "schema"},
		{"route with two answers", okAuth + "  assistant_request:\n    routes:\n      - called_number: \"+1\"\n        assistant_id: a\n        squad_id: b\n", "exactly one of"},
		{"route without match", okAuth + "  assistant_request:\n    routes:\n      - assistant_id: a\n", "needs at least one of"},
		{"empty spoken error", okAuth + "  assistant_request:\n    error_message: \" \"\n", "must not be empty"},
		{"write timeout below server timeout", okAuth + "server:\n  write_timeout: 10s\n", "must exceed vapi.server_timeout"},
		{"not yaml", "vapi: [\n", "did not find expected"},
		{"admin on a public address", okAuth + "admin:\n  listen: 0.0.0.0:6060\n", "must be on a loopback address"},
		{"admin on the public listener", okAuth + "admin:\n  listen: 127.0.0.1:3000\n", "never served on the public listener"},
		// Dangerous settings (security review, finding 7).
		{"tolerance of a year", "vapi:\n  auth:\n    - mode: hmac\n      tolerance: 8760h\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "a captured request would verify for that long"},
		{"replay window of 1ms", okAuth + "  replay:\n    window: 1ms\n", "must be at least 1s"},
		{"replay window shorter than tolerance", okAuth + "  replay:\n    window: 1m\n", "shorter than vapi.auth[0].tolerance"},
		{"replay capacity of 2e9", okAuth + "  replay:\n    capacity: 2000000000\n", "must be between 1 and 5000000"},
		{"sessions capacity of 1e9", okAuth + "sessions:\n  capacity: 1000000000\n", "must be between 1 and 2000000"},
		{"read_header_timeout 10m", okAuth + "server:\n  read_header_timeout: 10m\n", "longer than the 1m0s allowed"},
		{"max_header_bytes 100MB", okAuth + "server:\n  max_header_bytes: 100000000\n", "must be between 4096 and 1048576"},
		{"body budget below one body", okAuth + "server:\n  body_memory_bytes: 1000\n", "must be between vapi.max_body_bytes"},
		{"streams unbounded", okAuth + "server:\n  max_concurrent_streams: 0\n", "must be between 1 and 1000"},
		{"shutdown delay of an hour", okAuth + "server:\n  shutdown_delay: 1h\n", "must be between 0s and 1m"},
		{"wal limit too small", okAuth + "storage:\n  wal_limit_bytes: 10\n", "storage.wal_limit_bytes"},
		{"reserved tool header", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    headers:\n      x-voicegate-call-id: forged\n", "set by voicegate on every tool request"},
		{"host tool header", okAuth + "tools:\n  - name: t\n    url: http://127.0.0.1:1/x\n    headers:\n      Host: evil.example\n", "cannot be configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := problems(t, tc.yaml, Options{Getenv: env(nil)})
			if !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Fatalf("problems %q do not mention %q", ps, tc.want)
			}
		})
	}
}

// A value's own decoding problem (a duration without a unit, a bad key in
// a secret) does not hide the problems after it in the file.
func TestDecodingProblemsDoNotStopAtTheFirst(t *testing.T) {
	ps := problems(t, `
server:
  read_timeout: 5
vapi:
  auth:
    - mode: hmac
      secrets: [{value: k3J9xQ2mV7pL5nR8wT4z, nope: 1}]
storage:
  wal: 1
`, Options{})
	for _, want := range []string{
		`line 2: "5" is not a duration`,
		`line 6: unknown key "nope" in secret`,
		`line 8: unknown key "wal"`,
	} {
		found := false
		for _, p := range ps {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("problems %q do not mention %q", ps, want)
		}
	}
}

func TestEveryProblemInOnePass(t *testing.T) {
	ps := problems(t, `
listen: nope
vapi:
  path: webhook
  auth:
    - mode: hmac
      algorithm: md5
      secrets: [short]
tools:
  - name: "bad name"
    url: ftp://x
    method: TRACE
unknown_key: 1
`, Options{})
	if len(ps) < 7 {
		t.Fatalf("want every problem reported at once, got %d: %q", len(ps), ps)
	}
}

func TestHeaderFromFileAndSchemaFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte("Bearer from-file\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "schema.json"), []byte(`{"type":"object","required":["q"]}`), 0o600)
	c, err := Parse([]byte(`
vapi:
  auth: [{mode: secret, secrets: [k3J9xQ2mV7pL5nR8wT4z]}]
tools:
  - name: t
    url: http://127.0.0.1:1/x
    headers:
      Authorization: {file: `+filepath.Join(dir, "token")+`}
    schema_file: `+filepath.Join(dir, "schema.json")+`
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tools[0].Headers["Authorization"].Value; got != "Bearer from-file" {
		t.Fatalf("header from file = %q", got)
	}
	if c.Tools[0].Schema["required"] == nil {
		t.Fatalf("schema_file not loaded: %+v", c.Tools[0].Schema)
	}
}

func TestExpandEnv(t *testing.T) {
	got, missing := expandEnv("a ${X} b ${Y:-def} c $$ d $HOME e ${Z}", env(map[string]string{"X": "1"}))
	if got != "a 1 b def c $ d $HOME e " || len(missing) != 1 || !strings.Contains(missing[0], "Z") {
		t.Fatalf("got %q missing %q", got, missing)
	}
}

func TestSecretsNeverMarshalled(t *testing.T) {
	v, _ := Secret{Value: "top-secret-value"}.MarshalYAML()
	h, _ := tools.HeaderValue{Value: "top-secret-value"}.MarshalYAML()
	if v == "top-secret-value" || h == "top-secret-value" {
		t.Fatal("secret values must never be written back out")
	}
}

func TestEnvCannotInjectStructure(t *testing.T) {
	evil := "k3J9xQ2mV7pL5nR8wT4z\"]\nlisten: 0.0.0.0:1\nx: [\""
	c, err := Parse([]byte("vapi:\n  auth:\n    - mode: secret\n      secrets: [\"${EVIL}\"]\nsessions:\n  capacity: ${CAP}\n# a comment mentioning ${UNSET} is not expanded\n"),
		Options{Getenv: env(map[string]string{"EVIL": evil, "CAP": "42"})})
	if err == nil {
		t.Fatalf("a secret with a line break must be refused, got listen %q", c.Listen)
	}
	if !strings.Contains(err.Error(), "line break") || strings.Contains(err.Error(), "UNSET") || strings.Contains(err.Error(), "not found") {
		t.Fatalf("want only the line-break problem, got %v", err)
	}
	c, err = Parse([]byte("vapi:\n  auth:\n    - mode: secret\n      secrets: [\"${S}\"]\nsessions:\n  capacity: ${CAP}\n"),
		Options{Getenv: env(map[string]string{"S": "abc: def # 7Xq2Lm9Kz4", "CAP": "42"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Vapi.Auth[0].Secrets[0].Value != "abc: def # 7Xq2Lm9Kz4" || c.Sessions.Capacity != 42 {
		t.Fatalf("expanded values: %q %d", c.Vapi.Auth[0].Secrets[0].Value, c.Sessions.Capacity)
	}
}

// TestWeakSecretsRefused: no example, placeholder or hand-typed secret may
// start the gateway (security review, finding 11). Each is refused with the
// entry and the reason, never the value.
func TestWeakSecretsRefused(t *testing.T) {
	for _, tc := range []struct{ secret, why string }{
		{"aaaaaaaaaaaaaaaa", "fewer than 5 distinct"},
		{"abcdefghijklmnopqrst", "consecutive"},
		{"0123456789abcdef0123", "consecutive"},
		{"zyxwvutsrqponmlk", "consecutive"},
		{"bearer-token-000000000000", "published example"},
		{"legacy-secret-00000000000", "published example"},
		{"retired-secret-0000000000", "published example"},
		{"signature-secret-000000000", "published example"},
		{"my-secret-xxxxxxxxxxxx", "run of 12 repeated"},
		{"CHANGEME-CHANGEME-CHANGEME", "placeholder"},
		{"your-secret-goes-here-1", "placeholder"},
		{"abababababababababab", "fewer than 5 distinct"},
		{"passwordpassword", "placeholder"},
		{"secretsecretsecret", "repeats a 6-character pattern"},
		{"k3J9xQ2mk3J9xQ2mk3J9", "repeats a 8-character pattern"},
		{"qwertyuiopasdfgh", "placeholder"},
		{"bench-Tq8Zr3Km7Wx2Pn9Lv4Hs", "published example"},
	} {
		for _, mode := range []string{"hmac", "bearer", "secret"} {
			ps := strings.Join(problems(t, "vapi:\n  auth:\n    - mode: "+mode+"\n      secrets: [\""+tc.secret+"\"]\n", Options{}), "\n")
			if !strings.Contains(ps, "vapi.auth[0].secrets[0]: secret refused") || !strings.Contains(ps, tc.why) {
				t.Errorf("%s secret %q: problems %q do not refuse it with %q", mode, tc.secret, ps, tc.why)
			}
			if strings.Contains(ps, tc.secret) {
				t.Errorf("the refused secret is printed: %q", ps)
			}
		}
	}
	// Random secrets pass: generated ones, as `openssl rand -hex 32`, the
	// dev mode, or base64 of 12 to 32 random bytes would make them.
	for i := 0; i < 1000; i++ {
		if why := confval.WeakSecret(confval.NewSecret()); why != "" {
			t.Fatalf("a random secret was refused: %s", why)
		}
	}
	// Deterministic (seeded), so that the test cannot flake; 60,000 secrets.
	rng := mrand.NewChaCha8([32]byte{'v', 'o', 'i', 'c', 'e', 'g', 'a', 't', 'e'})
	for i := 0; i < 20000; i++ {
		b := make([]byte, 12+i%21)
		rng.Read(b)
		for _, s := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
			if why := confval.WeakSecret(s); why != "" {
				t.Fatalf("random secret %q was refused: %s", s, why)
			}
		}
	}
}

func TestPublicMetricsTokenChecked(t *testing.T) {
	base := "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\nadmin:\n  public_metrics_token: "
	for tok, want := range map[string]string{
		"short-token":            "admin.public_metrics_token: must be at least 16 bytes",
		"metrics-token-00000000": "admin.public_metrics_token: token refused: it contains a run of 8 repeated",
	} {
		ps := strings.Join(problems(t, base+tok+"\n", Options{}), "\n")
		if !strings.Contains(ps, want) || strings.Contains(ps, tok) {
			t.Errorf("token %q: problems %q, want %q without the value", tok, ps, want)
		}
	}
	if _, err := Parse([]byte(base+"m7Qx2Lp9Zr4Tw8Kv3Nb6\n"), Options{}); err != nil {
		t.Errorf("a random token refused: %v", err)
	}
}

// TestWarnings: settings with a legitimate use are accepted with a warning
// that serve logs and config check shows.
func TestWarnings(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"sha1", "vapi:\n  auth:\n    - mode: hmac\n      algorithm: sha1\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "vapi.auth[0].algorithm: sha1 is accepted for compatibility only"},
		{"no timestamp", "vapi:\n  auth:\n    - mode: hmac\n      timestamp_header: \"\"\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "vapi.auth[0]: no signed timestamp"},
		{"preset", "vapi:\n  auth:\n    - preset: vapi-signature\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "no signed timestamp"},
		{"bearer", "vapi:\n  auth:\n    - mode: bearer\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "static bearer token never expires"},
		{"long tolerance", "vapi:\n  auth:\n    - mode: hmac\n      tolerance: 30m\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n  replay:\n    window: 30m\n", "vapi.auth[0].tolerance: 30m0s is longer than the usual 5m"},
		{"log redaction off", "log:\n  redact_pii: false\nvapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n", "log.redact_pii: off: phone numbers"},
		{"big replay cache", "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n  replay:\n    capacity: 4000000\n", "vapi.replay.capacity: 4000000 entries can take 1011 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for _, w := range c.Warnings {
				ws = append(ws, w.String())
			}
			if !strings.Contains(strings.Join(ws, "\n"), tc.want) {
				t.Fatalf("warnings %q do not mention %q", ws, tc.want)
			}
		})
	}
	c, err := Parse([]byte("vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"), Options{})
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("the defaults must not warn: %v %v", err, c.Warnings)
	}
}

// TestREADMEShowsTheExample: the README embeds examples/voicegate.yaml; the
// two must not drift apart.
func TestREADMEShowsTheExample(t *testing.T) {
	ex, err := os.ReadFile(filepath.Join("..", "..", "examples", "voicegate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(ex)+"```\n") {
		t.Fatal("README.md does not embed examples/voicegate.yaml verbatim: copy the file into the Configuration section")
	}
}

// Validation reads the clock it is given, never the machine's.
func TestNotAfterCheckedAgainstInjectedClock(t *testing.T) {
	yml := []byte("vapi:\n  auth:\n    - mode: hmac\n      secrets:\n        - value: k3J9xQ2mV7pL5nR8wT4z\n          not_after: 2030-01-01T00:00:00Z\n")
	at := func(s string) func() time.Time {
		ts, _ := time.Parse(time.RFC3339, s)
		return func() time.Time { return ts }
	}
	if _, err := Parse(yml, Options{Now: at("2029-12-31T23:00:00Z")}); err != nil {
		t.Fatalf("a secret before its not_after: %v", err)
	}
	if _, err := Parse(yml, Options{Now: at("2030-01-01T01:00:00Z")}); err == nil || !strings.Contains(err.Error(), "every secret is past its not_after") {
		t.Fatalf("a secret past its not_after: %v", err)
	}
}

// TestUnsetVariableIsTheOneProblem: an unset ${VAR} is reported once, with
// where it is, instead of also as the empty value it left (a "0 bytes"
// secret) — and the configuration is still refused (fail closed).
func TestUnsetVariableIsTheOneProblem(t *testing.T) {
	ps := problems(t, "vapi:\n  auth:\n    - mode: hmac\n      secrets: [\"${VG_UNSET}\"]\n    - mode: bearer\n      secrets: [short]\n", Options{})
	want := []string{
		"vapi.auth[0].secrets[0]: line 4: environment variable VG_UNSET is not set",
		"vapi.auth[1].secrets[0]: secret is 5 bytes; at least 16 are required",
	}
	if strings.Join(ps, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(ps, "\n"), strings.Join(want, "\n"))
	}
}

func TestStorageDriverChecked(t *testing.T) {
	for doc, want := range map[string]string{
		"storage:\n  driver: mysql\n":                                       `storage.driver: "mysql" is not sqlite or postgres`,
		"storage:\n  driver: postgres\n":                                    "storage.postgres_url: required by driver postgres",
		"storage:\n  driver: postgres\n  postgres_url: mysql://u:pw@h/db\n": "storage.postgres_url: mysql://u:REDACTED@h/db is not a postgres",
		"storage:\n  postgres_url: postgres://u@127.0.0.1:5432/test\n":      "storage.postgres_url: set, but driver is sqlite",
	} {
		ps := problems(t, "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"+doc, Options{})
		if !strings.Contains(strings.Join(ps, "\n"), want) {
			t.Errorf("%q: problems %q, want %q", doc, ps, want)
		}
	}
	if _, err := Parse([]byte("vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\nstorage:\n  driver: postgres\n  postgres_url: postgres://vg@db.internal:5432/voicegate?sslmode=verify-full\n"), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestRecordsKeyringChecked(t *testing.T) {
	base := "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"
	for doc, want := range map[string]string{
		"records:\n  keyring_file: /k.json\n  keyring_env: VG_KEYRING\n": "records: keyring_file and keyring_env are both set",
		"records:\n  keyring_env: VG_KEYRING\n":                          "records.keyring_env: environment variable VG_KEYRING is not set",
		"records:\n  redaction: partial\n":                               `records.redaction: "partial" is not one of none, copy, only`,
		"records:\n  retention:\n    tool_call: -1h\n":                   "records.retention.tool_call: -1h0m0s is negative",
		"records:\n  retention:\n    end_of_call_report: 5m\n":           "records.retention.end_of_call_report: 5m0s is shorter than an hour",
		"records:\n  retention:\n    tool_call: 30\n":                    `"30" is not a duration`,
		"records:\n  retention:\n    calls: 30d\n":                       "calls",
		"records:\n  purge_interval: 10ms\n":                             "records.purge_interval: 10ms is shorter than a second",
	} {
		if ps := problems(t, base+doc, Options{}); !strings.Contains(strings.Join(ps, "\n"), want) {
			t.Errorf("%q: %q, want %q", doc, ps, want)
		}
	}
	cfg, err := Parse([]byte(base+"records:\n  keyring_env: VG_KEYRING\n"), Options{Getenv: func(k string) string {
		if k == "VG_KEYRING" {
			return `{"version":1}`
		}
		return ""
	}})
	if err != nil || cfg.Records.KeyringJSON != `{"version":1}` {
		t.Fatalf("keyring read from the environment: %v %q", err, cfg.Records.KeyringJSON)
	}
	cfg, err = Parse([]byte(base+"records:\n  redaction: copy\n  retention:\n    end_of_call_report: 90d\n    tool_call: 1d12h\n"), Options{})
	if err != nil || cfg.Records.Redaction != "copy" || cfg.Records.Retention.EndOfCall.D() != 90*24*time.Hour ||
		cfg.Records.Retention.ToolCall.D() != 36*time.Hour || cfg.Records.PurgeInterval.D() != time.Hour {
		t.Fatalf("records section: %+v %v", cfg.Records, err)
	}
	if cfg, _ := Parse([]byte(base), Options{}); cfg.Records.Redaction != "none" || len(cfg.Records.Retention.Periods()) != 0 {
		t.Fatalf("records defaults: %+v", cfg.Records)
	}
}

func TestVapiAllowFromChecked(t *testing.T) {
	doc := "vapi:\n  allow_from: [vapi-webhooks, twilio-nope, 10.0.0.0/33]\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"
	ps := strings.Join(problems(t, doc, Options{}), "\n")
	for _, want := range []string{`vapi.allow_from[1]: unknown preset "twilio-nope"`, `vapi.allow_from[2]: "10.0.0.0/33" is not a CIDR`} {
		if !strings.Contains(ps, want) {
			t.Errorf("problems %q, want %q", ps, want)
		}
	}
}

// TestREADMETwilioExampleLoads: the Twilio section the README shows is a
// valid configuration.
func TestREADMETwilioExampleLoads(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "## Connect Twilio")
	if !ok {
		t.Fatal("README has no Connect Twilio section")
	}
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	doc := "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n" + block
	cfg, err := Parse([]byte(doc), Options{Getenv: env(map[string]string{"TWILIO_AUTH_TOKEN": "f1c9a7e3b5d2084c6e1a9b3d7f5c2e8a", "TWILIO_OLD_AUTH_TOKEN": "c4e8a2f6b0d9175e3a8c1f6b9d2e7a04", "TWILIO_SUB_AUTH_TOKEN": "7b2e9f4a1c8d6e3b5a0f9c2d8e4b1a67"})})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Twilio.Enabled() || len(cfg.Twilio.Numbers) != 3 || len(cfg.Twilio.AuthTokens) != 3 || cfg.Twilio.AuthTokens[2].AccountSid == "" {
		t.Fatalf("%+v", cfg.Twilio)
	}
}
