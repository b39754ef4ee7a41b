// Package secrets keeps voicegate's managed webhook secrets — the HMAC
// secrets of the vapi.auth entry marked managed — sealed in the call
// store's database with the records' keyring, and rotates them with no
// failed request: a new secret is accepted by every running server before
// Vapi signs with it, and the old one stays accepted through a grace
// period (Rotator). Serve reloads them within seconds (Watcher).
package secrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/periodic"
)

// Deps are what a manager uses.
type Deps struct {
	Store  Store
	Keys   envelope.Keyring
	Random io.Reader        // nil: crypto/rand
	Now    func() time.Time // nil: time.Now
}

// Manager reads and adds secrets.
type Manager struct {
	store  Store
	keys   envelope.Keyring
	random io.Reader
	now    func() time.Time
}

// New returns the manager of d.
func New(d Deps) *Manager {
	if d.Random == nil {
		d.Random = rand.Reader
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Manager{store: d.Store, keys: d.Keys, random: d.Random, now: d.Now}
}

// Secret is a managed secret, opened.
type Secret struct {
	ID           string
	Generation   int64
	Value        string
	CreatedAt    time.Time
	NotAfter     time.Time
	CredentialID string
}

// Live says whether the secret is accepted at t.
func (s Secret) Live(t time.Time) bool { return s.NotAfter.IsZero() || t.Before(s.NotAfter) }

func aad(id string, generation int64) []byte {
	return []byte("voicegate webhook secret\x00" + id + "\x00" + strconv.FormatInt(generation, 10))
}

// Secrets returns the secrets not retired, opened, by generation.
func (m *Manager) Secrets(ctx context.Context) ([]Secret, error) {
	st, err := m.store.ListSecrets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Secret, 0, len(st))
	for _, s := range st {
		v, err := envelope.Open(m.keys, envelope.Sealed{Key: s.Key, Payload: s.Payload}, aad(s.ID, s.Generation))
		if err != nil {
			return nil, fmt.Errorf("webhook secret generation %d: %w", s.Generation, err)
		}
		out = append(out, Secret{ID: s.ID, Generation: s.Generation, Value: string(v), CreatedAt: s.CreatedAt, NotAfter: s.NotAfter, CredentialID: s.CredentialID})
	}
	return out, nil
}

// Accepted returns the secrets a verifier accepts (each with its
// not_after) and the highest generation among them.
func Accepted(all []Secret) ([]confval.Secret, int64) {
	var out []confval.Secret
	var gen int64
	for _, s := range all {
		out = append(out, confval.Secret{Value: s.Value, NotAfter: s.NotAfter})
		gen = max(gen, s.Generation)
	}
	return out, gen
}

// Add stores a new secret, the next generation: 32 random bytes, hex.
func (m *Manager) Add(ctx context.Context) (Secret, error) {
	all, err := m.store.ListSecrets(ctx)
	if err != nil {
		return Secret{}, err
	}
	var gen int64
	for _, s := range all {
		gen = max(gen, s.Generation)
	}
	return m.add(ctx, gen+1)
}

func (m *Manager) add(ctx context.Context, gen int64) (Secret, error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(m.random, raw); err != nil {
		return Secret{}, fmt.Errorf("new webhook secret: %w", err)
	}
	idb := make([]byte, 8)
	if _, err := io.ReadFull(m.random, idb); err != nil {
		return Secret{}, fmt.Errorf("new webhook secret: %w", err)
	}
	s := Secret{ID: "whs_" + hex.EncodeToString(idb), Generation: gen, Value: hex.EncodeToString(raw), CreatedAt: m.now()}
	sealed, err := envelope.Seal(m.keys, m.random, []byte(s.Value), aad(s.ID, gen))
	if err != nil {
		return Secret{}, err
	}
	ok, err := m.store.AddSecret(ctx, Stored{ID: s.ID, Generation: gen, CreatedAt: s.CreatedAt, Key: sealed.Key, Payload: sealed.Payload})
	if err != nil {
		return Secret{}, err
	}
	if !ok {
		return Secret{}, fmt.Errorf("webhook secret generation %d was added meanwhile by another process: run the command again", gen)
	}
	return s, nil
}

// Ensure returns the newest secret accepted now, creating the first one
// when there is none (created true). Processes starting at once create
// one between them.
func (m *Manager) Ensure(ctx context.Context) (Secret, bool, error) {
	for range 3 {
		all, err := m.Secrets(ctx)
		if err != nil {
			return Secret{}, false, err
		}
		now := m.now()
		var gen int64
		for i := len(all) - 1; i >= 0; i-- {
			gen = max(gen, all[i].Generation)
			if all[i].Live(now) {
				return all[i], false, nil
			}
		}
		s, err := m.add(ctx, gen+1)
		if err == nil {
			return s, true, nil
		}
	}
	return Secret{}, false, fmt.Errorf("webhook secret: another process keeps adding one")
}

// Rewrap re-wraps the secrets' data keys not under the keyring's current
// key; it returns how many.
func (m *Manager) Rewrap(ctx context.Context) (int, error) {
	st, err := m.store.ListSecrets(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if s.Key.KeyID == m.keys.Current() {
			continue
		}
		next, err := envelope.Rewrap(m.keys, s.Key, aad(s.ID, s.Generation))
		if err != nil {
			return n, fmt.Errorf("webhook secret generation %d: %w", s.Generation, err)
		}
		ok, err := m.store.RewrapSecret(ctx, s.ID, s.Key.KeyID, next)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// CheckRetire says whether key id may be retired: no secret may still be
// wrapped under it.
func (m *Manager) CheckRetire(ctx context.Context, id string) error {
	st, err := m.store.ListSecrets(ctx)
	if err != nil {
		return err
	}
	for _, s := range st {
		if s.Key.KeyID == id {
			return fmt.Errorf("key %s still wraps webhook secret generation %d: run voicegate keys rewrap first", id, s.Generation)
		}
	}
	return nil
}

// ReportLoaded records that process has loaded generation gen, now.
func (m *Manager) ReportLoaded(ctx context.Context, process string, gen int64) error {
	return m.store.ReportLoaded(ctx, process, gen, m.now())
}

// Rotation returns the rotation's progress.
func (m *Manager) Rotation(ctx context.Context) (Rotation, error) { return m.store.Rotation(ctx) }

// TakeLease and ReleaseLease: work one process does at a time.
func (m *Manager) TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	return m.store.TakeLease(ctx, name, holder, now, until)
}

// ReleaseLease frees holder's lease.
func (m *Manager) ReleaseLease(ctx context.Context, name, holder string) error {
	return m.store.ReleaseLease(ctx, name, holder)
}

// ErrLeaseHeld is a lease another process holds past the wait.
var ErrLeaseHeld = errors.New("another process holds the lease")

// WithLease runs f holding lease name as holder: taken for ttl and renewed
// every ttl/3 while f runs (so that a process killed midway holds others
// up for ttl at most), released after. A lease held by another process is
// waited for up to wait (waiting, if set, is called once when the wait
// starts); past it, ErrLeaseHeld.
func (m *Manager) WithLease(ctx context.Context, name, holder string, ttl, wait time.Duration, waiting func(), f func() error) error {
	deadline := m.now().Add(wait)
	said := false
	for {
		now := m.now()
		ok, err := m.store.TakeLease(ctx, name, holder, now, now.Add(ttl))
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if !now.Before(deadline) {
			return ErrLeaseHeld
		}
		if !said && waiting != nil {
			waiting()
			said = true
		}
		if err := periodic.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	renewCtx, stop := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for periodic.Sleep(renewCtx, ttl/3) == nil {
			now := m.now()
			m.store.TakeLease(renewCtx, name, holder, now, now.Add(ttl))
		}
	}()
	defer func() {
		stop()
		<-renewed
		m.store.ReleaseLease(context.WithoutCancel(ctx), name, holder)
	}()
	return f()
}
