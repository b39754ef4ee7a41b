// Package envelope provides envelope encryption for records at rest: each
// payload is sealed with AES-256-GCM under a fresh data key, and the data
// key is wrapped by a key-encryption key (KEK) from a Keyring, named by a
// versioned key id. Both layers bind the caller's additional data (the
// record id and call id), so a ciphertext moved to another row fails to
// open. Destroying a record's wrapped data key makes its payload
// unrecoverable (crypto-shredding), whatever backups of the payload exist.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

// Keyring holds key-encryption keys. The current one wraps new data keys;
// older ones still unwrap what they wrapped until it is rewrapped. An
// external KMS can implement it later.
type Keyring interface {
	// Current returns the id of the key new data keys are wrapped with.
	Current() string
	// Wrap seals dek under the current key, bound to aad.
	Wrap(dek, aad []byte) (Wrapped, error)
	// Unwrap opens w with the key it names; a missing key or a wrong one
	// is an error naming the key id (never garbage).
	Unwrap(w Wrapped, aad []byte) ([]byte, error)
}

// Wrapped is a data key sealed by a key-encryption key.
type Wrapped struct {
	KeyID string
	// Sealed is nonce || AES-256-GCM(KEK, dek, aad).
	Sealed []byte
}

// Sealed is a payload in its envelope.
type Sealed struct {
	Key Wrapped
	// Payload is nonce || AES-256-GCM(dek, plaintext, aad).
	Payload []byte
}

// ErrKeyMissing is a key id the keyring does not hold.
var ErrKeyMissing = errors.New("key not in the keyring")

// ErrOpen is a ciphertext that does not open: a wrong key, altered bytes,
// or other additional data (a payload moved to another record).
var ErrOpen = errors.New("does not open")

// Seal encrypts plaintext under a fresh data key drawn from random, and
// wraps the data key with kr's current key; both bound to aad.
func Seal(kr Keyring, random io.Reader, plaintext, aad []byte) (Sealed, error) {
	dek, w, err := NewDataKey(kr, random, aad)
	if err != nil {
		return Sealed{}, err
	}
	defer clear(dek)
	payload, err := seal(dek, random, plaintext, aad)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Key: w, Payload: payload}, nil
}

// SealPair is Seal with a second plaintext sealed under the same data key,
// bound to aad2 (which should extend aad, so that neither payload opens as
// the other). A record's redacted copy is its second payload: one wrapped
// key, destroyed for both at once.
func SealPair(kr Keyring, random io.Reader, plaintext, second, aad, aad2 []byte) (Sealed, []byte, error) {
	dek, w, err := NewDataKey(kr, random, aad)
	if err != nil {
		return Sealed{}, nil, err
	}
	defer clear(dek)
	payload, err := seal(dek, random, plaintext, aad)
	if err != nil {
		return Sealed{}, nil, err
	}
	p2, err := seal(dek, random, second, aad2)
	if err != nil {
		return Sealed{}, nil, err
	}
	return Sealed{Key: w, Payload: payload}, p2, nil
}

// NewDataKey draws a data key from random and wraps it with kr's current
// key, bound to aad: for an object with many payloads (a document's
// passages), each sealed with SealUnder. The caller clears the key.
func NewDataKey(kr Keyring, random io.Reader, aad []byte) ([]byte, Wrapped, error) {
	dek := make([]byte, KeySize)
	if _, err := io.ReadFull(random, dek); err != nil {
		return nil, Wrapped{}, fmt.Errorf("seal: data key: %w", err)
	}
	w, err := kr.Wrap(dek, aad)
	if err != nil {
		clear(dek)
		return nil, Wrapped{}, fmt.Errorf("seal: wrap the data key: %w", err)
	}
	return dek, w, nil
}

// SealUnder encrypts plaintext under a data key of NewDataKey, bound to
// aad.
func SealUnder(dek []byte, random io.Reader, plaintext, aad []byte) ([]byte, error) {
	return seal(dek, random, plaintext, aad)
}

// OpenUnder decrypts a payload of SealUnder.
func OpenUnder(dek, payload, aad []byte) ([]byte, error) {
	return open(dek, payload, aad)
}

// OpenSecond decrypts the second payload of a SealPair: key unwrapped with
// aad, payload bound to aad2.
func OpenSecond(kr Keyring, key Wrapped, payload, aad, aad2 []byte) ([]byte, error) {
	dek, err := kr.Unwrap(key, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	pt, err := open(dek, payload, aad2)
	if err != nil {
		return nil, fmt.Errorf("payload under key %s: %w", key.KeyID, err)
	}
	return pt, nil
}

// Open decrypts s, bound to aad.
func Open(kr Keyring, s Sealed, aad []byte) ([]byte, error) {
	dek, err := kr.Unwrap(s.Key, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	pt, err := open(dek, s.Payload, aad)
	if err != nil {
		return nil, fmt.Errorf("payload under key %s: %w", s.Key.KeyID, err)
	}
	return pt, nil
}

// Rewrap re-wraps w's data key under kr's current key without touching
// the payload it protects. A key already current is returned as is.
func Rewrap(kr Keyring, w Wrapped, aad []byte) (Wrapped, error) {
	if w.KeyID == kr.Current() {
		return w, nil
	}
	dek, err := kr.Unwrap(w, aad)
	if err != nil {
		return Wrapped{}, err
	}
	defer clear(dek)
	return kr.Wrap(dek, aad)
}

// seal is nonce || AES-256-GCM(key, plaintext, aad).
func seal(key []byte, random io.Reader, plaintext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	if _, err := io.ReadFull(random, out); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return gcm.Seal(out, out, plaintext, aad), nil
}

func open(key, sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize()+gcm.Overhead() {
		return nil, ErrOpen
	}
	pt, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
