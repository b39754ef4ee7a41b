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

// New builds the chain for a list of configured credentials.
func New(cfgs []Config) (Chain, error) {
	var c Chain
	for i, a := range cfgs {
		v, err := NewVerifier(a)
		if err != nil {
			return nil, fmt.Errorf("auth[%d]: %w", i, err)
		}
		c = append(c, v)
	}
	return c, nil
}

// NewVerifier builds one verifier from a validated AuthConfig (a
// *Managed for a managed entry: no secret until Set).
func NewVerifier(a Config) (Verifier, error) {
	if a.Managed {
		return NewManaged(a)
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

// Managed is the verifier of a managed entry: its secrets come from the
// secret store and change while serve runs (Set swaps them atomically: a
// request verifies against the secrets before or after, never a mix).
// Without secrets it refuses every request.
type Managed struct {
	cfg Config
	v   atomic.Pointer[hmacVerifier]
	// generation is the store's generation of the secrets set.
	generation atomic.Int64
}

// NewManaged returns the verifier of managed entry a, with no secret yet.
func NewManaged(a Config) (*Managed, error) {
	if a.Mode != ModeHMAC {
		return nil, fmt.Errorf("a managed entry is hmac, not %s", a.Mode)
	}
	if _, err := HashFunc(a.Algorithm); err != nil {
		return nil, err
	}
	return &Managed{cfg: a}, nil
}

// Set replaces the secrets (each with its not_after) and records their
// generation.
func (m *Managed) Set(secrets []confval.Secret, generation int64) error {
	a := m.cfg
	a.Secrets = secrets
	v, err := newHMAC(a)
	if err != nil {
		return err
	}
	m.v.Store(v)
	m.generation.Store(generation)
	return nil
}

// Generation is the generation of the secrets in use (0: none yet).
func (m *Managed) Generation() int64 { return m.generation.Load() }

// Config is the entry's configuration (its plan: header names, format,
// algorithm), without secrets.
func (m *Managed) Config() Config { return m.cfg }

// Verify implements Verifier.
func (m *Managed) Verify(r *Request, now time.Time) error {
	v := m.v.Load()
	if v == nil || len(v.keys) == 0 {
		return &Error{Reason: ReasonMismatch, Mode: ModeHMAC}
	}
	return v.Verify(r, now)
}
