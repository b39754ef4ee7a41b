package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
)

// TestManagedSecrets: serve with a managed vapi.auth entry creates the
// first secret and accepts what it signs; a secret added by a rotation
// (another process) is accepted by the running server within a few
// seconds with no restart, the generation is reported for the rotation
// to wait on, and a reload keeps the secrets in force.
func TestManagedSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nvapi:\n  auth:\n    - managed: true\n", dir)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	all, err := a.Secrets.Secrets(context.Background())
	if err != nil || len(all) != 1 || all[0].Generation != 1 {
		t.Fatalf("first secret: %+v %v", all, err)
	}
	srv := httptest.NewServer(a.Gateway)
	defer srv.Close()
	n := 0
	post := func(secret string) int {
		t.Helper()
		n++
		a := cfg.Vapi.Auth[0]
		a.Secrets = []confval.Secret{{Value: secret}}
		s, err := auth.NewSigner(a, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(fmt.Sprintf(`{"message":{"type":"speech-update","status":"started","role":"user","timestamp":%d,"call":{"id":"c1"}}}`, time.Now().UnixMilli()+int64(n)))
		req, _ := http.NewRequest(http.MethodPost, srv.URL+cfg.Vapi.Path, bytes.NewReader(body))
		s.Sign(req.Header, http.MethodPost, req.URL.String(), body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(all[0].Value); code != 200 {
		t.Fatalf("signed with the managed secret: %d", code)
	}
	if code := post("0123456789abcdef0123456789abcdef"); code != 401 {
		t.Fatalf("another secret: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, Listeners{}); close(done) }()
	defer func() { cancel(); <-done }()
	next, err := a.Secrets.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * SecretsPoll)
	for post(next.Value) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the new secret was not accepted by the running server")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := post(all[0].Value); code != 200 {
		t.Fatalf("the old secret during the rotation: %d", code)
	}
	if _, err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if post(next.Value) != 200 || post(all[0].Value) != 200 {
		t.Fatal("a reload dropped the managed secrets")
	}
	if a.secretSource.Generation() != 2 {
		t.Fatalf("generation %d in force", a.secretSource.Generation())
	}
}
