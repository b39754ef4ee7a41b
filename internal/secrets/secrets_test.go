package secrets_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/sqlite"
)

var ctx = context.Background()

// backends open a fresh store of each kind with a keyring; clock is the
// keyring's and the manager's.
func backends() []struct {
	name string
	open func(t *testing.T, clock *time.Time) (secrets.Store, *envelope.Local, *secrets.Manager)
} {
	parts := func(t *testing.T, st secrets.Store, clock *time.Time) (secrets.Store, *envelope.Local, *secrets.Manager) {
		now := func() time.Time { return *clock }
		kr, err := envelope.LoadFile(filepath.Join(t.TempDir(), "keyring.json"), rand.Reader, now)
		if err != nil {
			t.Fatal(err)
		}
		return st, kr, secrets.New(secrets.Deps{Store: st, Keys: kr, Now: now})
	}
	return []struct {
		name string
		open func(t *testing.T, clock *time.Time) (secrets.Store, *envelope.Local, *secrets.Manager)
	}{
		{"sqlite", func(t *testing.T, clock *time.Time) (secrets.Store, *envelope.Local, *secrets.Manager) {
			db, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return parts(t, db, clock)
		}},
		{"postgres", func(t *testing.T, clock *time.Time) (secrets.Store, *envelope.Local, *secrets.Manager) {
			db, err := postgres.Open(ctx, pgtest.BaseURL(), postgres.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return parts(t, db, clock)
		}},
	}
}

// fakeVapi stands in for Vapi's credential and assistant API (an
// external service): credentials by name, a pointer per managed resource.
type fakeVapi struct {
	mu          sync.Mutex
	creds       map[string]string // id -> name
	values      map[string]string // id -> secret
	pointed     string
	failCreate  int
	createCalls int
	deleted     []string
}

func newFakeVapi() *fakeVapi {
	return &fakeVapi{creds: map[string]string{}, values: map[string]string{}}
}

func (f *fakeVapi) EnsureCredential(_ context.Context, name, secret string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createCalls++
	for id, n := range f.creds {
		if n == name {
			return id, nil
		}
	}
	if f.failCreate > 0 {
		f.failCreate--
		return "", errors.New("Vapi answered 503")
	}
	id := fmt.Sprintf("cred_%d", len(f.creds)+1)
	f.creds[id], f.values[id] = name, secret
	return id, nil
}

func (f *fakeVapi) DeleteCredential(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.creds, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeVapi) Repoint(_ context.Context, id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pointed = id
	return 2, nil
}

func TestStoreContract(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			st, kr, m := b.open(t, &clock)
			first, created, err := m.Ensure(ctx)
			if err != nil || !created || first.Generation != 1 || len(first.Value) != 64 {
				t.Fatalf("ensure: %+v %v %v", first, created, err)
			}
			if again, created, _ := m.Ensure(ctx); created || again.ID != first.ID {
				t.Fatalf("ensure again: %+v %v", again, created)
			}
			if ok, err := st.AddSecret(ctx, secrets.Stored{ID: "x", Generation: 1, CreatedAt: clock, Key: envelope.Wrapped{KeyID: "k"}}); ok || err != nil {
				t.Fatalf("a second generation 1: %v %v", ok, err)
			}
			second, err := m.Add(ctx)
			if err != nil || second.Generation != 2 || second.Value == first.Value {
				t.Fatalf("add: %+v %v", second, err)
			}
			if err := st.SetSecretNotAfter(ctx, first.ID, clock.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := st.SetSecretCredential(ctx, second.ID, "cred_9"); err != nil {
				t.Fatal(err)
			}
			all, err := m.Secrets(ctx)
			if err != nil || len(all) != 2 || !all[0].NotAfter.Equal(clock.Add(time.Hour)) || all[1].CredentialID != "cred_9" || all[1].Value != second.Value {
				t.Fatalf("secrets: %+v %v", all, err)
			}
			acc, gen := secrets.Accepted(all)
			if gen != 2 || len(acc) != 2 || acc[0].NotAfter.IsZero() {
				t.Fatalf("accepted: %+v %d", acc, gen)
			}
			if err := st.RetireSecret(ctx, first.ID); err != nil {
				t.Fatal(err)
			}
			if err := st.SetSecretNotAfter(ctx, first.ID, clock); !errors.Is(err, secrets.ErrNotFound) {
				t.Fatalf("a retired secret updated: %v", err)
			}
			if all, _ := m.Secrets(ctx); len(all) != 1 || all[0].ID != second.ID {
				t.Fatalf("after retire: %+v", all)
			}
			// Key rotation: rewrapped secrets still open under the new key.
			if _, err := kr.Rotate(); err != nil {
				t.Fatal(err)
			}
			if n, err := m.Rewrap(ctx); n != 1 || err != nil {
				t.Fatalf("rewrap: %d %v", n, err)
			}
			if all, err := m.Secrets(ctx); err != nil || all[0].Value != second.Value {
				t.Fatalf("after rewrap: %+v %v", all, err)
			}
			// Loaders.
			st.ReportLoaded(ctx, "a", 1, clock)
			st.ReportLoaded(ctx, "a", 2, clock.Add(time.Second))
			st.ReportLoaded(ctx, "b", 2, clock)
			if ls, err := st.Loaders(ctx); err != nil || len(ls) != 2 || ls[0].Generation != 2 || !ls[0].SeenAt.Equal(clock.Add(time.Second)) {
				t.Fatalf("loaders: %+v %v", ls, err)
			}
			// Rotation round trip.
			r := secrets.Rotation{Step: secrets.StepSwitched, From: "a", To: "b", Grace: time.Hour, RetireAt: clock.Add(time.Hour), UpdatedAt: clock}
			if err := st.PutRotation(ctx, r); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Rotation(ctx); err != nil || got.Step != r.Step || !got.RetireAt.Equal(r.RetireAt) || got.Grace != r.Grace {
				t.Fatalf("rotation: %+v %v", got, err)
			}
			// Leases: exclusive, renewable by their holder, free once expired
			// or released.
			until := clock.Add(time.Minute)
			if ok, _ := st.TakeLease(ctx, "rotate", "p1", clock, until); !ok {
				t.Fatal("a free lease refused")
			}
			if ok, _ := st.TakeLease(ctx, "rotate", "p2", clock, until); ok {
				t.Fatal("a held lease taken")
			}
			if ok, _ := st.TakeLease(ctx, "rotate", "p1", clock, until.Add(time.Minute)); !ok {
				t.Fatal("its holder could not renew")
			}
			if ok, _ := st.TakeLease(ctx, "rotate", "p2", until.Add(2*time.Minute), until.Add(3*time.Minute)); !ok {
				t.Fatal("an expired lease refused")
			}
			st.ReleaseLease(ctx, "rotate", "p2")
			if ok, _ := st.TakeLease(ctx, "rotate", "p1", clock, until); !ok {
				t.Fatal("a released lease refused")
			}
		})
	}
}

// TestEnsureOnce: processes starting at once create one first secret.
func TestEnsureOnce(t *testing.T) {
	clock := time.Now()
	_, _, m := backends()[0].open(t, &clock)
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			s, _, err := m.Ensure(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- s.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("%d first secrets", len(seen))
	}
}

// TestRotation: a rotation end to end on both stores with a stand-in for
// Vapi: the new secret is accepted before Vapi holds it, a live server
// that has not loaded it holds the rotation back, a failure at the
// credential step is recorded and resumed (finding the credential by
// name, never creating two), the old secret stays accepted through the
// grace period and is destroyed after it with its credential.
func TestRotation(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			st, _, m := b.open(t, &clock)
			vapi := newFakeVapi()
			var audited []string
			loaded := int64(1)
			r := &secrets.Rotator{M: m, Vapi: vapi, WaitLoaded: 10 * time.Second,
				Audit: func(_ context.Context, event, subject, detail string) error {
					audited = append(audited, event)
					return nil
				},
				Sleep: func(context.Context, time.Duration) error {
					// A second passes; the server loads the new generation
					// after three.
					clock = clock.Add(time.Second)
					if len(audited) > 0 && clock.Sub(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)) >= 3*time.Second {
						loaded = 2
					}
					st.ReportLoaded(ctx, "serve-1", loaded, clock)
					return nil
				}}
			first, _, _ := m.Ensure(ctx)
			st.SetSecretCredential(ctx, first.ID, "cred_old")
			vapi.creds["cred_old"] = "voicegate-webhook-" + first.ID
			st.ReportLoaded(ctx, "serve-1", 1, clock)
			st.ReportLoaded(ctx, "serve-dead", 0, clock.Add(-time.Hour)) // long gone: not waited for
			vapi.failCreate = 1
			rot, err := r.Start(ctx, 24*time.Hour)
			if err == nil || rot.Step != secrets.StepLoaded || !strings.Contains(rot.Error, "503") {
				t.Fatalf("start with Vapi failing: %+v %v", rot, err)
			}
			if loaded != 2 {
				t.Fatal("the rotation did not wait for the live server")
			}
			// Both secrets are accepted meanwhile.
			all, _ := m.Secrets(ctx)
			if len(all) != 2 || !all[0].Live(clock) || !all[1].Live(clock) {
				t.Fatalf("during the rotation: %+v", all)
			}
			status, _ := secrets.Status(ctx, m, clock)
			if !strings.Contains(status, `at step "loaded"; rotate --resume will create the Vapi credential`) || !strings.Contains(status, "last error: create the Vapi credential") {
				t.Fatalf("status:\n%s", status)
			}
			if strings.Contains(status, all[0].Value) || strings.Contains(status, all[1].Value) {
				t.Fatal("status prints a secret")
			}
			rot, err = r.Resume(ctx)
			if err != nil || rot.Step != secrets.StepSwitched || rot.Error != "" {
				t.Fatalf("resume: %+v %v", rot, err)
			}
			all, _ = m.Secrets(ctx)
			if vapi.pointed == "" || vapi.pointed != all[1].CredentialID || vapi.values[vapi.pointed] != all[1].Value {
				t.Fatalf("Vapi points at %q; new secret's credential %q", vapi.pointed, all[1].CredentialID)
			}
			if !all[0].NotAfter.Equal(clock.Add(24*time.Hour)) || !all[1].NotAfter.IsZero() {
				t.Fatalf("not_after: %+v", all)
			}
			// A resumed resume does nothing more; a new start is refused.
			if rot, err := r.Resume(ctx); err != nil || rot.Step != secrets.StepSwitched {
				t.Fatalf("resume again: %+v %v", rot, err)
			}
			if _, err := r.Start(ctx, time.Hour); !errors.Is(err, secrets.ErrInProgress) {
				t.Fatalf("a second rotation: %v", err)
			}
			if done, err := r.RetireDue(ctx); done || err != nil {
				t.Fatalf("retired before the grace period: %v %v", done, err)
			}
			clock = clock.Add(24*time.Hour + time.Second)
			if done, err := r.RetireDue(ctx); !done || err != nil {
				t.Fatalf("retire: %v %v", done, err)
			}
			if all, _ := m.Secrets(ctx); len(all) != 1 || all[0].Generation != 2 {
				t.Fatalf("after retire: %+v", all)
			}
			if len(vapi.deleted) != 1 || vapi.deleted[0] != "cred_old" {
				t.Fatalf("deleted credentials: %v", vapi.deleted)
			}
			want := "secrets.rotate.start secrets.rotate.added secrets.rotate.loaded secrets.rotate.credential secrets.rotate.switched secrets.rotate.retired"
			if got := strings.Join(audited, " "); got != want {
				t.Fatalf("audited %s", got)
			}
			// The next rotation may start.
			if rot, err := r.Start(ctx, time.Hour); err != nil || rot.Step != secrets.StepSwitched {
				t.Fatalf("next rotation: %+v %v", rot, err)
			}
		})
	}
}

// TestRotationWaitsForLiveServers: a live server that never loads the new
// secret stops the rotation before Vapi is told of it, saying which.
func TestRotationWaitsForLiveServers(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st, _, m := backends()[0].open(t, &clock)
	vapi := newFakeVapi()
	r := &secrets.Rotator{M: m, Vapi: vapi, WaitLoaded: 5 * time.Second, Sleep: func(context.Context, time.Duration) error {
		clock = clock.Add(time.Second)
		st.ReportLoaded(ctx, "stuck", 1, clock)
		return nil
	}}
	m.Ensure(ctx)
	st.ReportLoaded(ctx, "stuck", 1, clock)
	rot, err := r.Start(ctx, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "stuck (generation 1)") || rot.Step != secrets.StepAdded || vapi.createCalls != 0 {
		t.Fatalf("%+v %v (%d creates)", rot, err, vapi.createCalls)
	}
}

// TestCredentials: vapi apply's credential: none on a plan before the
// first apply; the first apply creates the secret and its credential,
// once; during a rotation not yet switched, the old secret's.
func TestCredentials(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st, _, m := backends()[0].open(t, &clock)
	vapi := newFakeVapi()
	c := &secrets.Credentials{M: m, Vapi: vapi}
	if id, err := c.CredentialID(ctx, false); id != "" || err != nil {
		t.Fatalf("plan before any apply: %q %v", id, err)
	}
	if all, _ := m.Secrets(ctx); len(all) != 0 {
		t.Fatal("a plan created a secret")
	}
	id, err := c.CredentialID(ctx, true)
	if err != nil || id == "" {
		t.Fatalf("first apply: %q %v", id, err)
	}
	if again, _ := c.CredentialID(ctx, true); again != id || vapi.createCalls != 1 {
		t.Fatalf("second apply: %q (%d creates)", again, vapi.createCalls)
	}
	if plan, _ := c.CredentialID(ctx, false); plan != id {
		t.Fatalf("plan after apply: %q", plan)
	}
	// A rotation stopped before the switch: the old credential still.
	st.ReportLoaded(ctx, "stuck", 1, clock)
	r := &secrets.Rotator{M: m, Vapi: vapi, WaitLoaded: time.Second, Sleep: func(context.Context, time.Duration) error {
		clock = clock.Add(time.Second)
		st.ReportLoaded(ctx, "stuck", 1, clock)
		return nil
	}}
	if _, err := r.Start(ctx, time.Hour); err == nil {
		t.Fatal("the rotation went on past a stuck server")
	}
	if cur, _ := c.CredentialID(ctx, true); cur != id {
		t.Fatalf("during the rotation: %q, want the old %q", cur, id)
	}
	if _, err := (&secrets.Credentials{M: secrets.New(secrets.Deps{Store: st, Keys: m2keys(t)})}).CredentialID(ctx, true); err == nil {
		t.Fatal("a keyring that cannot open the secrets was accepted")
	}
}

// m2keys is a keyring other than the store's.
func m2keys(t *testing.T) *envelope.Local {
	kr, err := envelope.LoadFile(filepath.Join(t.TempDir(), "keyring.json"), rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestWithLease: the lease is held while f runs — renewed past its ttl —
// refused to another holder, waited for up to the wait, and released.
func TestWithLease(t *testing.T) {
	start := time.Now()
	st, kr, _ := backends()[0].open(t, &start)
	var skew atomic.Int64 // the renewal reads the clock from its goroutine
	m := secrets.New(secrets.Deps{Store: st, Keys: kr, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	var inner error
	err := m.WithLease(ctx, "l", "a", 300*time.Millisecond, 0, nil, func() error {
		time.Sleep(100 * time.Millisecond)
		skew.Store(int64(time.Second)) // past the ttl: only the renewal holds it
		time.Sleep(250 * time.Millisecond)
		inner = m.WithLease(ctx, "l", "b", time.Second, 0, nil, func() error { return nil })
		return nil
	})
	if err != nil || !errors.Is(inner, secrets.ErrLeaseHeld) {
		t.Fatalf("outer %v, inner %v (want the lease held by its renewal)", err, inner)
	}
	waited := false
	if err := m.WithLease(ctx, "l", "b", time.Second, 0, func() { waited = true }, func() error { return nil }); err != nil || waited {
		t.Fatalf("after release: %v (waited %v)", err, waited)
	}
}
