package asynctools

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
)

// Sealer encrypts what a queued call must keep but nobody may read in the
// database: the caller's arguments, the call's control URL (a capability:
// whoever holds it can speak into the call) and the internal API's answer.
// aad binds a sealed value to the job it belongs to, so that a value copied
// onto another job's row does not open; callID names the call, for a
// Sealer that binds values to the call's erasure secret.
type Sealer interface {
	// Seal returns plaintext encrypted and authenticated with aad.
	Seal(callID string, plaintext, aad []byte) ([]byte, error)
	// Open returns the plaintext of a Seal output with the same aad; an
	// error wrapping ErrOpen when it never will (altered, other aad or
	// key, the call erased), another error when it may later (the secret
	// could not be read now).
	Open(callID string, sealed, aad []byte) ([]byte, error)
}

// ErrOpen is returned by AESGCM.Open for a value it cannot authenticate.
var ErrOpen = errors.New("asynctools: sealed value does not open (wrong key, altered, or another job's)")

// aesgcmVersion is the first byte of an AESGCM output.
const aesgcmVersion = 1

// AESGCM is a Sealer over one 256-bit key: version byte, random 96-bit
// nonce, AES-256-GCM ciphertext. It stands in for the keyring (which also
// rotates keys) in tests and simple setups.
type AESGCM struct{ aead cipher.AEAD }

var _ Sealer = (*AESGCM)(nil)

// NewAESGCM returns a Sealer over a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("asynctools: key is %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &AESGCM{aead: aead}, nil
}

// Seal implements Sealer.
func (s *AESGCM) Seal(_ string, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = aesgcmVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:], plaintext, aad), nil
}

// Open implements Sealer.
func (s *AESGCM) Open(_ string, sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != aesgcmVersion {
		return nil, ErrOpen
	}
	p, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// KeyringSealer seals with the records keyring (envelope encryption: a
// fresh data key per value, wrapped by the keyring's current key), so that
// queued jobs follow the records' key rotation, and binds each value to its
// call's erasure secret, as records are: a purge of the call makes its
// queued arguments and result unreadable, even in an older copy of the
// database. A key retired while a job it sealed is queued makes that job
// unreadable: retire keys no sooner than the longest tool deadline after a
// rotation.
type KeyringSealer struct {
	Keys    envelope.Keyring
	Random  io.Reader
	Secrets records.CallSecrets
}

var _ Sealer = KeyringSealer{}

// secretTimeout bounds reading a call's secret.
const secretTimeout = 5 * time.Second

func (k KeyringSealer) bind(callID string, aad []byte, create bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
	defer cancel()
	secret, err := k.Secrets.Secret(ctx, callID, create)
	switch {
	case errors.Is(err, records.ErrCallErased), errors.Is(err, records.ErrSecretMissing):
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	case err != nil:
		return nil, err
	}
	return append(append(append([]byte(nil), aad...), 0), secret...), nil
}

// Seal implements Sealer.
func (k KeyringSealer) Seal(callID string, plaintext, aad []byte) ([]byte, error) {
	aad, err := k.bind(callID, aad, true)
	if err != nil {
		return nil, err
	}
	s, err := envelope.Seal(k.Keys, k.Random, plaintext, aad)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Open implements Sealer.
func (k KeyringSealer) Open(callID string, sealed, aad []byte) ([]byte, error) {
	aad, err := k.bind(callID, aad, false)
	if err != nil {
		return nil, err
	}
	var s envelope.Sealed
	if err := json.Unmarshal(sealed, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	pt, err := envelope.Open(k.Keys, s, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return pt, nil
}
