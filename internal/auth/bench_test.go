package auth

import (
	"net/http"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// benchVerify verifies one signed 1 kB body with chain c.
func benchVerify(b *testing.B, c Chain, cfg Config, secret string) {
	now := time.Now()
	a := cfg
	a.Managed = false
	a.Secrets = []confval.Secret{{Value: secret}}
	s, err := NewSigner(a, now)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a'
	}
	h := http.Header{}
	s.Sign(h, http.MethodPost, "https://gw.example.com/webhook/vapi", body, now)
	r := &Request{Method: http.MethodPost, Header: h, Body: body}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Verify(r, now); err != nil {
			b.Fatal(err)
		}
	}
}

const benchSecret = "0123456789abcdef0123456789abcdef-bench"

// BenchmarkVerifyHMAC: Vapi's HMAC plan with a configured secret.
func BenchmarkVerifyHMAC(b *testing.B) {
	cfg := Config{Mode: ModeHMAC, Secrets: []confval.Secret{{Value: benchSecret}}}
	cfg.Complete()
	c, err := New([]Config{cfg}, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, c, cfg, benchSecret)
}

// BenchmarkVerifyManaged: the same plan with the managed secret: what a
// managed entry adds is an atomic load; during a rotation two secrets are
// in force, and a request signed with the newer is checked against both.
func BenchmarkVerifyManaged(b *testing.B) {
	cfg := Config{Managed: true}
	cfg.Complete()
	for _, rotating := range []bool{false, true} {
		name := "one-secret"
		secrets := []confval.Secret{{Value: benchSecret}}
		if rotating {
			name = "rotating"
			secrets = append([]confval.Secret{{Value: "fedcba9876543210fedcba9876543210-old", NotAfter: time.Now().Add(time.Hour)}}, secrets...)
		}
		b.Run(name, func(b *testing.B) {
			src := &SecretSource{}
			src.Set(secrets, 2)
			c, err := New([]Config{cfg}, src)
			if err != nil {
				b.Fatal(err)
			}
			benchVerify(b, c, cfg, benchSecret)
		})
	}
}
