package redisstate

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// Answers and tool results hold what internal APIs said about callers:
// personal data, which must not sit in clear in Redis (or in its
// persistence files and backups). They are sealed with AES-256-GCM under
// a key every replica derives from the records keyring's lookup key, bound
// to the key they are stored under. Live calls' sessions hold no personal
// data (statuses, counters, the barge-in state) and are not sealed, except
// the call's control URL: a capability (whoever holds it controls the live
// call), sealed under the call's key (sealedFields).

// sealer seals and opens values; nil seals nothing.
type sealer struct{ aead cipher.AEAD }

// SealWith makes the Conn seal stored answers and tool results under a key
// derived from secret (the records keyring's lookup key: the same on
// every replica). Call it before the Conn is used.
func (c *Conn) SealWith(secret []byte) error {
	if len(secret) < 16 {
		return errors.New("state: the sealing secret is too short")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("voicegate/redisstate/seal/v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	c.seal = &sealer{aead: aead}
	return nil
}

var errUnsealable = errors.New("a stored answer could not be opened (another keyring?)")

func (s *sealer) sealBytes(plain []byte, aad string) []byte {
	if s == nil {
		return plain
	}
	n := s.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(out)
	return s.aead.Seal(out, out[:n], plain, []byte(aad))
}

func (s *sealer) openBytes(sealed []byte, aad string) ([]byte, error) {
	if s == nil {
		return sealed, nil
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errUnsealable
	}
	p, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(aad))
	if err != nil {
		return nil, errUnsealable
	}
	return p, nil
}

// sealedField reports whether field f of a call's hash is held sealed.
func sealedField(f string) bool { return f == "cu" }

// sealField is value v of field f of the call stored under aad, as stored.
func (s *sealer) sealField(f, v, aad string) string {
	if !sealedField(f) || v == "" {
		return v
	}
	return string(s.sealBytes([]byte(v), aad))
}

// openFields opens, in place, the sealed fields of h, the hash of the call
// stored under aad; one that cannot be opened (another keyring) is left
// out: the call learns it again from a later message.
func (s *sealer) openFields(h map[string]string, aad string) {
	for f, v := range h {
		if !sealedField(f) || v == "" {
			continue
		}
		p, err := s.openBytes([]byte(v), aad)
		if err != nil {
			delete(h, f)
			continue
		}
		h[f] = string(p)
	}
}
