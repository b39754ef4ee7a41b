package auth

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"github.com/voicegate/voicegate/internal/confval"
	"net/http"
	"strconv"
	"time"
)

// Signer adds the credential of one AuthConfig to outgoing requests, using
// its first secret that is still active. simulate and bench use it; tests use
// it to build requests the verifiers must accept.
type Signer struct {
	cfg    Config
	key    []byte
	secret string
	format []segment
}

// NewSigner returns a Signer for a completed AuthConfig.
func NewSigner(a Config, now time.Time) (*Signer, error) {
	s := &Signer{cfg: a, format: parseFormat(a.PayloadFormat)}
	for _, sec := range a.Secrets {
		if sec.NotAfter.IsZero() || now.Before(sec.NotAfter) {
			s.secret = sec.Value
			break
		}
	}
	if s.secret == "" {
		return nil, errors.New("no active secret to sign with")
	}
	if a.Mode == ModeHMAC {
		k, err := keyBytes(a, confval.Secret{Value: s.secret})
		if err != nil {
			return nil, err
		}
		s.key = k
	}
	return s, nil
}

// Sign sets the credential headers on h for a request with this method,
// signed URL and body at time now (timestamp in Unix seconds).
func (s *Signer) Sign(h http.Header, method, url string, body []byte, now time.Time) {
	a := s.cfg
	switch a.Mode {
	case ModeBearer:
		v := s.secret
		if a.BearerPrefix != nil && *a.BearerPrefix {
			v = "Bearer " + v
		}
		h.Set(a.Header, v)
	case ModeSecret:
		h.Set(a.Header, s.secret)
	case ModeHMAC:
		nh, _ := HashFunc(a.Algorithm)
		m := hmac.New(nh, s.key)
		ts := strconv.FormatInt(now.Unix(), 10)
		writePayload(m, nil, s.format, &Request{Method: method, URL: url, Body: body}, ts)
		sum := m.Sum(nil)
		var enc string
		if a.Encoding == "base64" {
			enc = base64.StdEncoding.EncodeToString(sum)
		} else {
			enc = hex.EncodeToString(sum)
		}
		if !a.PrefixOptional {
			// An optional prefix is omitted: the bare form is the one
			// every receiver of the preset accepts.
			enc = a.Prefix + enc
		}
		h.Set(a.SignatureHeader, enc)
		if th := a.TimestampHeaderName(); th != "" {
			h.Set(th, ts)
		}
	}
}
