package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"github.com/voicegate/voicegate/internal/confval"
	"hash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hmacVerifier implements Vapi's HMAC authentication plan: a signature over
// a payload built from a format such as "{timestamp}.{body}", in a header,
// optionally behind a prefix, hex or base64 encoded.
type hmacVerifier struct {
	sigHeader string
	tsHeader  string // canonical; "" when no timestamp is signed
	prefix    string
	prefixOpt bool
	base64    bool
	size      int
	tolerance time.Duration
	format    []segment
	keys      []hmacKey
	newHash   func() hash.Hash
}

type hmacKey struct {
	pool     sync.Pool // *macState, keyed; Reset between uses
	notAfter time.Time
}

// macState is a keyed HMAC with a scratch buffer, reused through a pool so
// that verifying allocates nothing.
type macState struct {
	h       hash.Hash
	scratch []byte
	sum     [sha512.Size]byte
}

// segment is a literal or a placeholder of a payload format.
type segment struct {
	lit  []byte
	kind byte // 0 literal, 'b' body, 't' timestamp, 'm' method, 'u' url
}

// HashFunc returns the hash of an HMAC plan's algorithm name (sha256,
// sha512, sha1).
func HashFunc(alg string) (func() hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	case "sha1":
		return sha1.New, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

func parseFormat(f string) []segment {
	var segs []segment
	for f != "" {
		i := strings.IndexByte(f, '{')
		if i < 0 {
			segs = append(segs, segment{lit: []byte(f)})
			break
		}
		j := strings.IndexByte(f[i:], '}')
		if j < 0 {
			segs = append(segs, segment{lit: []byte(f)})
			break
		}
		if i > 0 {
			segs = append(segs, segment{lit: []byte(f[:i])})
		}
		var kind byte
		switch f[i : i+j+1] {
		case "{body}":
			kind = 'b'
		case "{timestamp}":
			kind = 't'
		case "{method}":
			kind = 'm'
		case "{url}":
			kind = 'u'
		}
		if kind == 0 {
			segs = append(segs, segment{lit: []byte(f[i : i+j+1])})
		} else {
			segs = append(segs, segment{kind: kind})
		}
		f = f[i+j+1:]
	}
	return segs
}

// keyBytes decodes a configured secret to HMAC key bytes.
func keyBytes(a Config, s confval.Secret) ([]byte, error) {
	if a.SecretBase64 {
		k, err := base64.StdEncoding.DecodeString(s.Value)
		if err != nil {
			return nil, fmt.Errorf("secret is not base64: %w", err)
		}
		return k, nil
	}
	return []byte(s.Value), nil
}

func newHMAC(a Config) (*hmacVerifier, error) {
	nh, err := HashFunc(a.Algorithm)
	if err != nil {
		return nil, err
	}
	v := &hmacVerifier{
		sigHeader: http.CanonicalHeaderKey(a.SignatureHeader),
		prefix:    a.Prefix,
		prefixOpt: a.PrefixOptional,
		base64:    a.Encoding == "base64",
		size:      nh().Size(),
		tolerance: a.Tolerance.D(),
		format:    parseFormat(a.PayloadFormat),
		newHash:   nh,
	}
	if ts := a.TimestampHeaderName(); ts != "" {
		v.tsHeader = http.CanonicalHeaderKey(ts)
	}
	v.keys = make([]hmacKey, len(a.Secrets))
	for i, s := range a.Secrets {
		key, err := keyBytes(a, s)
		if err != nil {
			return nil, err
		}
		v.keys[i].notAfter = s.NotAfter
		v.keys[i].pool.New = func() any { return &macState{h: hmac.New(nh, key), scratch: make([]byte, 0, 256)} }
	}
	return v, nil
}

func (v *hmacVerifier) Verify(r *Request, now time.Time) error {
	sigs := r.Header[v.sigHeader]
	if len(sigs) == 0 || sigs[0] == "" {
		return &Error{Reason: ReasonMissing, Mode: ModeHMAC}
	}
	if len(sigs) > 1 {
		return &Error{Reason: ReasonMalformed, Mode: ModeHMAC}
	}
	var sigBuf [sha512.Size]byte
	got, ok := v.decodeSignature(strings.TrimSpace(sigs[0]), sigBuf[:])
	if !ok {
		return &Error{Reason: ReasonMalformed, Mode: ModeHMAC}
	}
	var ts string
	var at time.Time
	if v.tsHeader != "" {
		tv := r.Header[v.tsHeader]
		if len(tv) == 0 || tv[0] == "" {
			return &Error{Reason: ReasonMissing, Mode: ModeHMAC}
		}
		if len(tv) > 1 {
			return &Error{Reason: ReasonMalformed, Mode: ModeHMAC}
		}
		ts = tv[0]
		at, ok = ParseTimestamp(ts)
		if !ok {
			return &Error{Reason: ReasonMalformed, Mode: ModeHMAC}
		}
		// The window is checked before any HMAC is computed: a stale
		// request costs the receiver nothing.
		if d := now.Sub(at); d > v.tolerance {
			return &Error{Reason: ReasonStale, Mode: ModeHMAC}
		} else if d < -v.tolerance {
			return &Error{Reason: ReasonFuture, Mode: ModeHMAC}
		}
	}
	err := matchKeys(ModeHMAC, len(v.keys), now, func(i int) (bool, time.Time) {
		k := &v.keys[i]
		st := k.pool.Get().(*macState)
		st.h.Reset()
		st.scratch = writePayload(st.h, st.scratch, v.format, r, ts)
		ok := hmac.Equal(st.h.Sum(st.sum[:0]), got)
		k.pool.Put(st)
		return ok, k.notAfter
	})
	if err == nil && v.tsHeader != "" {
		r.ValidUntil = at.Add(v.tolerance)
	}
	return err
}

// writePayload writes the signed payload into w without building it; string
// parts go through scratch (returned for reuse) so nothing is allocated.
func writePayload(w hash.Hash, scratch []byte, format []segment, r *Request, ts string) []byte {
	str := func(s string) {
		scratch = append(scratch[:0], s...)
		w.Write(scratch)
	}
	for _, s := range format {
		switch s.kind {
		case 0:
			w.Write(s.lit)
		case 'b':
			w.Write(r.Body)
		case 't':
			str(ts)
		case 'm':
			str(r.Method)
		case 'u':
			str(r.SignedURL())
		}
	}
	return scratch
}

// decodeSignature strips the prefix and decodes into buf; a signature of the
// wrong length for the algorithm is rejected here, before any compare.
func (v *hmacVerifier) decodeSignature(s string, buf []byte) ([]byte, bool) {
	if v.prefix != "" {
		if strings.HasPrefix(s, v.prefix) {
			s = s[len(v.prefix):]
		} else if !v.prefixOpt {
			return nil, false
		}
	}
	if v.base64 {
		var enc *base64.Encoding
		switch len(s) {
		case base64.StdEncoding.EncodedLen(v.size):
			enc = base64.StdEncoding
		case base64.RawStdEncoding.EncodedLen(v.size):
			enc = base64.RawStdEncoding
		default:
			return nil, false
		}
		n, err := enc.Decode(buf, []byte(s))
		if err != nil || n != v.size {
			return nil, false
		}
		return buf[:n], true
	}
	if len(s) != hex.EncodedLen(v.size) {
		return nil, false
	}
	n, err := hex.Decode(buf, []byte(s))
	if err != nil || n != v.size {
		return nil, false
	}
	return buf[:n], true
}

// ParseTimestamp reads a signed timestamp: Unix seconds (integer or
// fractional), Unix milliseconds (any integer of 12 digits or more), or
// RFC 3339. Times outside 2000–2200 are not plausible and are refused.
func ParseTimestamp(s string) (time.Time, bool) {
	t, ok := parseTimestamp(s)
	if !ok || t.Before(minTimestamp) || t.After(maxTimestamp) {
		return time.Time{}, false
	}
	return t, true
}

var (
	minTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTimestamp = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parseTimestamp(s string) (time.Time, bool) {
	if s == "" || len(s) > 40 {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}, false
		}
		if n >= 1e11 {
			return time.UnixMilli(n), true
		}
		return time.Unix(n, 0), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f >= 1e11 {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
