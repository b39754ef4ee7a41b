// Package auth provides the webhook authenticators voicegate puts in front of
// every request — Vapi's HMAC plan, bearer tokens and the legacy static
// x-vapi-secret — and the matching signers used by simulate and bench.
//
// Every verifier runs on the raw body before any JSON is parsed, compares in
// constant time, accepts several secrets at once for rotation, and reports a
// failure only as a Reason for logs and metrics: the caller sees a generic 401.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Reason says why a request failed authentication. Reasons are stable metric
// label values.
type Reason string

// Failure reasons, from least to most specific.
const (
	ReasonMissing   Reason = "missing"        // no credential header
	ReasonMalformed Reason = "malformed"      // wrong length, encoding, prefix or timestamp format
	ReasonMismatch  Reason = "mismatch"       // well-formed but matches no secret
	ReasonExpired   Reason = "expired_secret" // matches only a secret past its not_after
	ReasonStale     Reason = "stale"          // signed timestamp older than the window
	ReasonFuture    Reason = "future"         // signed timestamp ahead of the window
)

// Reasons lists every Reason, for metrics pre-registration.
var Reasons = []Reason{ReasonMissing, ReasonMalformed, ReasonMismatch, ReasonExpired, ReasonStale, ReasonFuture}

func (r Reason) rank() int {
	for i, x := range Reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// Error is an authentication failure.
type Error struct {
	Reason Reason
	Mode   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("authentication failed (%s, %s)", e.Mode, e.Reason)
}

// ReasonOf returns the Reason of an authentication error, or "" for nil.
func ReasonOf(err error) Reason {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	if err != nil {
		return ReasonMalformed
	}
	return ""
}

// Request is what a verifier sees: everything but the body is read-only.
type Request struct {
	Method string
	Header http.Header
	Body   []byte
	// URL is the URL the sender signed, for the {url} placeholder. When empty
	// it is derived, only by formats that sign it, from PublicURL (the
	// configured URL the sender calls: a proxy may rewrite scheme, host or
	// port) or else from HTTP.
	URL       string
	PublicURL string
	HTTP      *http.Request

	// ValidUntil is set by a verifier that accepts the request: the time
	// after which its credential no longer verifies (a signed timestamp plus
	// the tolerance). It stays zero for credentials that never expire
	// (static tokens, signatures without a timestamp).
	ValidUntil time.Time
}

// SignedURL returns the URL the sender signed.
func (r *Request) SignedURL() string {
	if r.URL != "" || r.HTTP == nil {
		return r.URL
	}
	q := r.HTTP.URL.RawQuery
	if r.PublicURL != "" {
		if q != "" {
			return r.PublicURL + "?" + q
		}
		return r.PublicURL
	}
	scheme := "http"
	if r.HTTP.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.HTTP.Host + r.HTTP.URL.RequestURI()
}

// Verifier authenticates one request. It returns nil or an *Error.
type Verifier interface {
	Verify(r *Request, now time.Time) error
}

// Chain accepts a request that passes any one of its verifiers.
type Chain []Verifier

// Verify returns nil if any verifier accepts r, else the most specific
// failure among them.
func (c Chain) Verify(r *Request, now time.Time) error {
	var best *Error
	for _, v := range c {
		err := v.Verify(r, now)
		if err == nil {
			return nil
		}
		var ae *Error
		if !errors.As(err, &ae) {
			ae = &Error{Reason: ReasonMalformed}
		}
		if best == nil || ae.Reason.rank() > best.Reason.rank() {
			best = ae
		}
	}
	if best == nil {
		return &Error{Reason: ReasonMissing}
	}
	return best
}

// New builds the chain for a list of configured credentials; managed
// entries read src (nil: they have no secret).
func New(cfgs []Config, src *SecretSource) (Chain, error) {
	var c Chain
	for i, a := range cfgs {
		var v Verifier
		var err error
		if a.Managed {
			v, err = NewManaged(a, src)
		} else {
			v, err = NewVerifier(a)
		}
		if err != nil {
			return nil, fmt.Errorf("auth[%d]: %w", i, err)
		}
		c = append(c, v)
	}
	return c, nil
}

// NewVerifier builds one verifier from a validated AuthConfig (not a
// managed one: see New).
func NewVerifier(a Config) (Verifier, error) {
	if a.Managed {
		return nil, fmt.Errorf("a managed entry needs the secret store")
	}
	switch a.Mode {
	case ModeHMAC:
		return newHMAC(a)
	case ModeBearer:
		return newToken(a, *a.BearerPrefix), nil
	case ModeSecret:
		return newToken(a, false), nil
	}
	return nil, fmt.Errorf("unknown auth mode %q", a.Mode)
}

// token verifies a static token in a header (bearer or x-vapi-secret).
//
// Threat: a byte-by-byte compare leaks, through timing, how much of a guess is
// right, and even a length check leaks the token's length. Both sides are
// hashed with SHA-256 first, so the compare is over fixed-size digests.
type token struct {
	mode   string
	header string
	bearer bool
	keys   []tokenKey
}

type tokenKey struct {
	digest   [sha256.Size]byte
	notAfter time.Time
}

func newToken(a Config, bearer bool) *token {
	t := &token{mode: a.Mode, header: http.CanonicalHeaderKey(a.Header), bearer: bearer}
	for _, s := range a.Secrets {
		t.keys = append(t.keys, tokenKey{digest: sha256.Sum256([]byte(s.Value)), notAfter: s.NotAfter})
	}
	return t
}

func (t *token) Verify(r *Request, now time.Time) error {
	vals := r.Header[t.header]
	if len(vals) == 0 || vals[0] == "" {
		return &Error{Reason: ReasonMissing, Mode: t.mode}
	}
	if len(vals) > 1 {
		return &Error{Reason: ReasonMalformed, Mode: t.mode}
	}
	v := vals[0]
	if t.bearer {
		const p = "bearer "
		if len(v) <= len(p) || !asciiEqualFold(v[:len(p)], p) {
			return &Error{Reason: ReasonMalformed, Mode: t.mode}
		}
		v = v[len(p):]
	}
	d := sha256.Sum256([]byte(v))
	return matchKeys(t.mode, len(t.keys), now, func(i int) (bool, time.Time) {
		k := &t.keys[i]
		return subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1, k.notAfter
	})
}

// matchKeys tries the keys in order and returns nil on the first match with
// a key still active. A match only on retired keys is reported as
// ReasonExpired, none at all as ReasonMismatch.
func matchKeys(mode string, n int, now time.Time, try func(i int) (bool, time.Time)) error {
	expired := false
	for i := 0; i < n; i++ {
		ok, notAfter := try(i)
		if !ok {
			continue
		}
		if notAfter.IsZero() || now.Before(notAfter) {
			return nil
		}
		expired = true
	}
	if expired {
		return &Error{Reason: ReasonExpired, Mode: mode}
	}
	return &Error{Reason: ReasonMismatch, Mode: mode}
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// SecretSource holds the managed secrets in force: the secret store's
// watcher sets them, every managed verifier reads them (those of a
// reloaded configuration too), so a change applies to the next request.
type SecretSource struct {
	p atomic.Pointer[secretSnapshot]
}

type secretSnapshot struct {
	secrets    []confval.Secret
	generation int64
}

// Set replaces the secrets (each with its not_after), of generation gen.
func (s *SecretSource) Set(secrets []confval.Secret, generation int64) {
	s.p.Store(&secretSnapshot{secrets: secrets, generation: generation})
}

// Generation is the generation in force (0: none yet).
func (s *SecretSource) Generation() int64 {
	if snap := s.p.Load(); snap != nil {
		return snap.generation
	}
	return 0
}

// Managed is the verifier of a managed entry: its secrets come from a
// SecretSource and change while serve runs; a request verifies against the
// secrets before or after a change, never a mix. Without secrets it
// refuses every request.
type Managed struct {
	cfg   Config
	src   *SecretSource
	built atomic.Pointer[builtManaged]
}

type builtManaged struct {
	snap *secretSnapshot
	v    *hmacVerifier
}

// NewManaged returns the verifier of managed entry a reading src.
func NewManaged(a Config, src *SecretSource) (*Managed, error) {
	if a.Mode != ModeHMAC {
		return nil, fmt.Errorf("a managed entry is hmac, not %s", a.Mode)
	}
	if _, err := HashFunc(a.Algorithm); err != nil {
		return nil, err
	}
	if src == nil {
		src = &SecretSource{}
	}
	return &Managed{cfg: a, src: src}, nil
}

// Verify implements Verifier.
func (m *Managed) Verify(r *Request, now time.Time) error {
	snap := m.src.p.Load()
	if snap == nil || len(snap.secrets) == 0 {
		return &Error{Reason: ReasonMismatch, Mode: ModeHMAC}
	}
	b := m.built.Load()
	if b == nil || b.snap != snap {
		a := m.cfg
		a.Secrets = snap.secrets
		v, err := newHMAC(a)
		if err != nil {
			return &Error{Reason: ReasonMismatch, Mode: ModeHMAC}
		}
		b = &builtManaged{snap: snap, v: v}
		m.built.Store(b)
	}
	return b.v.Verify(r, now)
}
