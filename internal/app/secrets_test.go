package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/secrets"
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

// stubVapi stands in for Vapi's API (an external service) in the
// scheduled rotation's test.
type stubVapi struct{ creds, repoints, deletes int }

func (s *stubVapi) EnsureCredential(context.Context, string, string) (string, error) {
	s.creds++
	return fmt.Sprintf("cred_%d", s.creds), nil
}
func (s *stubVapi) DeleteCredential(context.Context, string) error { s.deletes++; return nil }
func (s *stubVapi) Repoint(context.Context, string) (int, error)   { s.repoints++; return 1, nil }

// TestScheduledRotation: with vapi.rotation.every, serve starts a
// rotation when the newest secret is that old, finishes it after the
// grace period, and only one of two processes on the store does it at a
// time.
func TestScheduledRotation(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nvapi:\n  auth:\n    - managed: true\n  public_url: https://gw.example.com\n  api: {key: k3J9xQ2mV7pL5nR8wT4zAb7Cd}\n  rotation: {every: 90d, grace: 1h}\n", dir)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Read by the watcher's goroutine below: atomic.
	var clockNS atomic.Int64
	clockNS.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clockNS.Load()) }
	advance := func(d time.Duration) { clockNS.Add(int64(d)) }
	a, err := New(context.Background(), cfg, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stub := &stubVapi{}
	a.vapiRotation = stub
	ctx := context.Background()
	a.rotationTick(ctx)
	if stub.creds != 0 {
		t.Fatal("rotated a fresh secret")
	}
	advance(91 * 24 * time.Hour)
	clock := now()
	// Another process holds the lease: this one waits its turn.
	if ok, _ := a.Secrets.TakeLease(ctx, "secrets.rotation", "other", clock, clock.Add(time.Minute)); !ok {
		t.Fatal("lease")
	}
	a.rotationTick(ctx)
	if stub.creds != 0 {
		t.Fatal("rotated while another process held the lease")
	}
	a.Secrets.ReleaseLease(ctx, "secrets.rotation", "other")
	// The servers that must load the new secret: this one, by its watcher.
	go func() {
		for range 50 {
			a.loadSecrets(ctx)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	a.rotationTick(ctx)
	rot, _ := a.Secrets.Rotation(ctx)
	if rot.Step != "switched" || stub.creds != 1 || stub.repoints != 1 {
		t.Fatalf("after the scheduled rotation: %+v %+v", rot, stub)
	}
	advance(time.Hour + time.Second)
	a.rotationTick(ctx)
	if rot, _ := a.Secrets.Rotation(ctx); rot.Step != "retired" {
		t.Fatalf("not retired after the grace period: %+v", rot)
	}
	if all, _ := a.Secrets.Secrets(ctx); len(all) != 1 || all[0].Generation != 2 {
		t.Fatalf("secrets: %+v", all)
	}
}

// failingReads is a store whose secret reads fail once fail is set (a
// keyring without the new key fails the same way).
type failingReads struct {
	secrets.Store
	fail atomic.Bool
}

func (f *failingReads) ListSecrets(ctx context.Context) ([]secrets.Stored, error) {
	if f.fail.Load() {
		return nil, errors.New("read failed")
	}
	return f.Store.ListSecrets(ctx)
}

// TestRotationWaitsForServerThatCannotLoad: a running server that cannot
// read the new secret (its keyring lacks the key, its reads fail) still
// serves with the old one; the rotation must keep waiting for it rather
// than take it for gone once its last report is LiveWithin old — else
// Vapi is switched to a secret that server refuses (401s).
func TestRotationWaitsForServerThatCannotLoad(t *testing.T) {
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
	st := a.store.Store.(secrets.Store)
	flaky := &failingReads{Store: st}
	a.Secrets = secrets.New(secrets.Deps{Store: flaky, Keys: a.keys, Now: a.now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, Listeners{}); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(SecretsPoll + 500*time.Millisecond)
	flaky.fail.Store(true)
	other := secrets.New(secrets.Deps{Store: st, Keys: a.keys})
	next, err := other.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutRotation(context.Background(), secrets.Rotation{Step: secrets.StepAdded, To: next.ID, Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stub := &stubVapi{}
	r := &secrets.Rotator{M: other, Vapi: stub, LiveWithin: 3 * time.Second, WaitLoaded: 8 * time.Second}
	if _, err := r.Resume(context.Background()); err == nil || stub.creds != 0 {
		t.Fatalf("the rotation went on (%v, %d credential(s)) while a running server could not load the new secret", err, stub.creds)
	}
	if a.secretSource.Generation() != 1 {
		t.Fatalf("generation %d in force", a.secretSource.Generation())
	}
}
