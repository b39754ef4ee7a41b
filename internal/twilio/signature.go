// Package twilio authenticates Twilio's webhook requests.
//
// signature.go is the X-Twilio-Signature scheme as Twilio signs and as its
// helper libraries (twilio-go, twilio-python, twilio-node) check it: pure
// functions over the raw inputs — the URL Twilio requested, the POST form
// parameters, the raw body — with no net/http dependency.
//
//	signed string = URL + name₁value₁ + name₂value₂ + …   (names sorted, byte order)
//	signature     = base64( HMAC-SHA1( auth token, signed string ) )
//
// A repeated name contributes each of its distinct values, sorted, as the
// Node and Python libraries do (twilio-go keeps only the first value). A
// request with a JSON body carries bodySHA256=<hex SHA-256 of the body> in
// its query string instead: the signature then covers the URL alone, and
// the body must hash to that value.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// SignatureHeader is the request header that carries the signature.
const SignatureHeader = "X-Twilio-Signature"

// BodyHashParam is the query parameter that marks a JSON request: the
// lowercase hex SHA-256 of its raw body.
const BodyHashParam = "bodySHA256"

// Verification failures. Verify returns exactly one of them.
var (
	// ErrMissingSignature: the request has no (or an empty)
	// X-Twilio-Signature.
	ErrMissingSignature = errors.New("no X-Twilio-Signature")
	// ErrMalformedSignature: the signature is not the standard base64 of
	// 20 bytes (28 characters ending in "="), so no token can produce it.
	ErrMalformedSignature = errors.New("X-Twilio-Signature is not the base64 of an HMAC-SHA1")
	// ErrNoMatch: a well-formed signature that no token produces over any
	// URL variant.
	ErrNoMatch = errors.New("X-Twilio-Signature matches no token")
	// ErrBodyHashMismatch: the signature over the URL (which carries
	// bodySHA256) is valid, but the raw body does not hash to that
	// bodySHA256: the body is not the one Twilio sent.
	ErrBodyHashMismatch = errors.New("the body does not match the URL's bodySHA256")
)

// Param is one POST form parameter as received (decoded).
type Param struct {
	Name, Value string
}

// AppendValues appends every name and value of a parsed form — such as
// http.Request.PostForm, never http.Request.Form: query parameters are
// already part of the signed URL — to dst.
func AppendValues(dst []Param, v url.Values) []Param {
	for name, values := range v {
		for _, value := range values {
			dst = append(dst, Param{Name: name, Value: value})
		}
	}
	return dst
}

// Canonical returns the string Twilio signs for a request to rawURL with
// these form parameters: rawURL exactly as given, then for each parameter
// name in byte order, name+value for each of its distinct values in byte
// order. params may be in any order and a name may repeat; params is not
// modified. A JSON request (its URL carries bodySHA256) is signed over its
// URL alone: pass no params.
func Canonical(rawURL string, params []Param) string {
	n := len(rawURL)
	for _, p := range params {
		n += len(p.Name) + len(p.Value)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(rawURL)
	var stack [32]Param
	each(&stack, params, func(p Param) {
		b.WriteString(p.Name)
		b.WriteString(p.Value)
	})
	return b.String()
}

// SignedParams returns the parameters as they are signed: the distinct
// ones, sorted by name, then value.
func SignedParams(params []Param) []Param {
	var out []Param
	var stack [32]Param
	each(&stack, params, func(p Param) { out = append(out, p) })
	return out
}

// appendParams appends the sorted, de-duplicated name+value pairs. Sorting
// by (name, value) sorts the names, then each name's values; equal
// neighbours are the duplicates. A typical form (up to 32 parameters) is
// sorted in a copy on the stack, without allocating.
func appendParams(dst []byte, params []Param) []byte {
	var stack [32]Param
	each(&stack, params, func(p Param) {
		dst = append(dst, p.Name...)
		dst = append(dst, p.Value...)
	})
	return dst
}

// each calls f for each distinct parameter in (name, value) order, sorting
// a copy in stack when it fits.
func each(stack *[32]Param, params []Param, f func(Param)) {
	sorted := append(stack[:0], params...)
	slices.SortFunc(sorted, compareParams)
	for i, p := range sorted {
		if i == 0 || p != sorted[i-1] {
			f(p)
		}
	}
}

func compareParams(a, b Param) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

// Sign returns the X-Twilio-Signature of a signed string: the base64 of its
// HMAC-SHA1 keyed with the auth token.
func Sign(token, canonical string) string {
	m := hmac.New(sha1.New, []byte(token))
	io.WriteString(m, canonical)
	var sig [28]byte // base64.StdEncoding.EncodedLen(sha1.Size)
	base64.StdEncoding.Encode(sig[:], m.Sum(nil))
	return string(sig[:])
}

// URLVariants returns the URLs a signature is checked against, in the order
// Verify tries them: rawURL as given, then — when its authority can be read
// — the same URL with the port toggled: without a port, the scheme's
// default port added (":443" for https and wss, ":80" otherwise); with a
// port, that port removed. These are the variants Twilio's helper libraries
// accept ("sig generation on back-end is inconsistent", twilio-go); like
// them, any port is removed, not only the default one (their tests accept
// "https://host:1234/…" signed as "https://host/…"). One deliberate
// difference: the libraries add ":80" to anything not https, wss included;
// here wss, TLS like https, gets ":443". Everything else is kept byte for
// byte: the host's case, the path and the query are never re-encoded.
func URLVariants(rawURL string) []string {
	if v, ok := appendPortVariant(nil, rawURL); ok {
		return []string{rawURL, string(v)}
	}
	return []string{rawURL}
}

// appendPortVariant appends rawURL with its port toggled (see URLVariants).
// It reports false, appending nothing, when rawURL has no
// scheme://authority with a readable host and port.
func appendPortVariant(dst []byte, rawURL string) ([]byte, bool) {
	scheme, insert, colon, end, ok := locatePort(rawURL)
	if !ok {
		return dst, false
	}
	if colon < 0 {
		port := ":80"
		if strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "wss") {
			port = ":443"
		}
		dst = append(dst, rawURL[:insert]...)
		dst = append(dst, port...)
		return append(dst, rawURL[insert:]...), true
	}
	dst = append(dst, rawURL[:colon]...)
	return append(dst, rawURL[end:]...), true
}

// locatePort finds the port of a scheme://[userinfo@]host[:port] URL: the
// offset of its ":" and the end of the authority, or colon = -1 and the
// offset where a port would go. It refuses (ok false) anything it cannot
// read unambiguously: no scheme or authority, an empty host, a port that
// is not digits, an IPv6 literal outside brackets.
func locatePort(u string) (scheme string, insert, colon, end int, ok bool) {
	i := strings.Index(u, "://")
	if i <= 0 || !validScheme(u[:i]) {
		return "", 0, 0, 0, false
	}
	start := i + 3
	end = len(u)
	if j := strings.IndexAny(u[start:], "/?#"); j >= 0 {
		end = start + j
	}
	if at := strings.LastIndexByte(u[start:end], '@'); at >= 0 {
		start += at + 1
	}
	host := u[start:end]
	if host == "" {
		return "", 0, 0, 0, false
	}
	portAt := -1
	if host[0] == '[' {
		rb := strings.IndexByte(host, ']')
		if rb < 0 {
			return "", 0, 0, 0, false
		}
		if rest := host[rb+1:]; rest != "" {
			if rest[0] != ':' {
				return "", 0, 0, 0, false
			}
			portAt = rb + 1
		}
	} else if c := strings.IndexByte(host, ':'); c >= 0 {
		if c == 0 || strings.IndexByte(host[c+1:], ':') >= 0 {
			return "", 0, 0, 0, false
		}
		portAt = c
	}
	if portAt < 0 {
		return u[:i], end, -1, end, true
	}
	port := host[portAt+1:]
	if port == "" {
		return "", 0, 0, 0, false
	}
	for k := 0; k < len(port); k++ {
		if port[k] < '0' || port[k] > '9' {
			return "", 0, 0, 0, false
		}
	}
	return u[:i], 0, start + portAt, end, true
}

// validScheme reports whether s is an RFC 3986 scheme.
func validScheme(s string) bool {
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case k > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// maxQueryParams mirrors net/url's default limit on query parameters
// (GODEBUG urlmaxqueryparams): past it, url.ParseQuery returns nothing, so
// twilio-go finds no bodySHA256.
const maxQueryParams = 10000

// BodySHA256 returns the value of rawURL's bodySHA256 query parameter and
// whether it is set (non-empty): the mark of a JSON request, whose
// signature covers the URL alone and whose raw body must hash to it. The
// query is read as net/url reads it (and so as twilio-go does): the first
// value of the name after unescaping, a pair holding ";" or a bad escape
// skipped. An empty value is no mark (twilio-go and twilio-python then
// check the request as a form).
func BodySHA256(rawURL string) (string, bool) {
	q := rawURL
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q = q[:i]
	}
	i := strings.IndexByte(q, '?')
	if i < 0 {
		return "", false
	}
	q = q[i+1:]
	if strings.Count(q, "&") >= maxQueryParams {
		return "", false
	}
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(name, "%+") {
			n, err := url.QueryUnescape(name)
			if err != nil {
				continue
			}
			name = n
		}
		if name != BodyHashParam {
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			continue
		}
		return v, v != ""
	}
	return "", false
}

// Request is what a Twilio signature covers, as received.
type Request struct {
	// URL is the full URL Twilio requested: the public scheme, host and
	// port Twilio was configured with (not what a proxy in front of
	// voicegate turned them into), then the path and query exactly as
	// received (http.Request.RequestURI, never a re-encoded URL).
	URL string
	// Params are the POST form parameters, in any order, a name possibly
	// repeated: http.Request.PostForm, never Form (the query is already in
	// the URL). None for a GET. Ignored for a JSON request.
	Params []Param
	// Body is the raw body. Only a JSON request's (URL with bodySHA256)
	// is read.
	Body []byte
	// Signature is the X-Twilio-Signature header.
	Signature string
}

// Verifier checks X-Twilio-Signature against every auth token active for
// a webhook: during a rotation the old and the new token, or the tokens of
// several sub-accounts whose webhooks share it. It is safe for concurrent
// use, and a verification allocates nothing for a form of up to 32
// parameters.
type Verifier struct {
	keys    []sync.Pool // per token, *keyedMAC
	scratch sync.Pool   // *[]byte, the signed string
}

// keyedMAC is an HMAC-SHA1 keyed with one token, reset between uses.
type keyedMAC struct {
	h   hash.Hash
	sum [sha1.Size]byte
}

// maxScratch is the largest signed-string buffer kept for reuse: a request
// with a huge form does not pin its buffer.
const maxScratch = 64 << 10

// NewVerifier returns a Verifier for these auth tokens, tried in order. It
// fails when there is no token or a token is empty: a webhook without a
// token would accept nothing, or — in a careless caller — everything.
func NewVerifier(tokens []string) (*Verifier, error) {
	if len(tokens) == 0 {
		return nil, errors.New("twilio: no auth token")
	}
	v := &Verifier{keys: make([]sync.Pool, len(tokens))}
	for i, t := range tokens {
		if t == "" {
			return nil, errors.New("twilio: empty auth token")
		}
		key := []byte(t)
		v.keys[i].New = func() any { return &keyedMAC{h: hmac.New(sha1.New, key)} }
	}
	v.scratch.New = func() any { b := make([]byte, 0, 1024); return &b }
	return v, nil
}

// Verify checks r's signature. It returns the index of the token that
// produced it, or -1 and one of ErrMissingSignature, ErrMalformedSignature,
// ErrNoMatch or ErrBodyHashMismatch. Each URL variant (URLVariants) is
// tried with each token; the signature is compared in constant time.
//
// For a JSON request (BodySHA256 of the URL is set) the signature covers
// the URL alone, r.Params are ignored, and once the signature is valid the
// SHA-256 of r.Body must equal the URL's bodySHA256: the signature is
// checked first, so an unauthenticated request never costs a hash of its
// body.
func (v *Verifier) Verify(r *Request) (int, error) {
	if r.Signature == "" {
		return -1, ErrMissingSignature
	}
	var want [sha1.Size]byte
	if !decodeSignature(&want, r.Signature) {
		return -1, ErrMalformedSignature
	}
	params := r.Params
	bodyHash, isJSON := BodySHA256(r.URL)
	if isJSON {
		params = nil
	}
	bp := v.scratch.Get().(*[]byte)
	// The buffer holds the sorted parameters, then the URL variant; the
	// MAC reads the URL part first.
	buf := appendParams((*bp)[:0], params)
	n := len(buf)
	buf = append(buf, r.URL...)
	match := v.match(buf[n:], buf[:n], &want)
	if match < 0 {
		var ok bool
		if buf, ok = appendPortVariant(buf[:n], r.URL); ok {
			match = v.match(buf[n:], buf[:n], &want)
		}
	}
	if cap(buf) <= maxScratch {
		*bp = buf
		v.scratch.Put(bp)
	}
	if match < 0 {
		return -1, ErrNoMatch
	}
	if isJSON && !bodyMatches(r.Body, bodyHash) {
		return -1, ErrBodyHashMismatch
	}
	return match, nil
}

// match returns the index of the first token whose HMAC of url+params is
// want, or -1.
func (v *Verifier) match(url, params []byte, want *[sha1.Size]byte) int {
	for i := range v.keys {
		m := v.keys[i].Get().(*keyedMAC)
		m.h.Reset()
		m.h.Write(url)
		m.h.Write(params)
		ok := hmac.Equal(m.h.Sum(m.sum[:0]), want[:])
		v.keys[i].Put(m)
		if ok {
			return i
		}
	}
	return -1
}

// sigEncoding decodes signatures strictly: with non-zero padding bits
// accepted, several header values would decode to one MAC.
var sigEncoding = base64.StdEncoding.Strict()

// decodeSignature decodes a signature that is exactly the standard,
// padded base64 of 20 bytes. Go's decoder skips CR and LF; they are
// refused first, so one MAC has exactly one accepted encoding — the
// string Twilio's libraries compare.
func decodeSignature(dst *[sha1.Size]byte, s string) bool {
	if len(s) != base64.StdEncoding.EncodedLen(sha1.Size) || strings.ContainsAny(s, "\r\n") {
		return false
	}
	var buf [sha1.Size + 2]byte
	n, err := sigEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != sha1.Size {
		return false
	}
	copy(dst[:], buf[:n])
	return true
}

// bodyMatches reports whether body's SHA-256 is want, lowercase hex (as
// Twilio writes it, and as its libraries compare: "ABC…" does not match).
// The hash of a body is no secret; the compare is constant-time anyway.
func bodyMatches(body []byte, want string) bool {
	var w [sha256.Size]byte
	if !decodeLowerHex(&w, want) {
		return false
	}
	sum := sha256.Sum256(body)
	return hmac.Equal(sum[:], w[:])
}

// BodyHash returns the lowercase hex SHA-256 of body: the bodySHA256 Twilio
// puts in the URL of a JSON request.
func BodyHash(body []byte) string {
	const digits = "0123456789abcdef"
	sum := sha256.Sum256(body)
	var out [2 * sha256.Size]byte
	for i, b := range sum {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&15]
	}
	return string(out[:])
}

func decodeLowerHex(dst *[sha256.Size]byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := lowerHexDigit(s[2*i])
		lo, ok2 := lowerHexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
