// Package redact removes credentials from URLs, and from text that quotes
// URLs (error messages), before they are logged or printed.
//
// Threat: operators put API keys in tool URLs (?apikey=...) and in
// connection strings (user:password@host); Go's HTTP client quotes the full
// URL in its errors. Anything written to a log, to stdout or to a CI job can
// be read by more people than the configuration file, so the secret parts
// are replaced by [Mask] and the rest is kept for diagnosis.
//
// Redaction is heuristic (see [URL]). It errs on the side of hiding: an
// ordinary value under a secret-looking name is hidden too.
package redact

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

const (
	// Mask replaces every secret value.
	Mask = "REDACTED"
	// Unparseable replaces a URL that cannot be parsed: its parts, and so its
	// secrets, cannot be told apart.
	Unparseable = "<unparseable URL>"
)

// secretNameParts: a query or fragment parameter whose name, lower-cased,
// contains one of these is secret. Substrings, so "pass" covers password,
// passwd and passphrase; "auth" covers authorization and oauth_*; "sig" covers
// signature and X-Amz-Signature; "cred" covers credential; "sess" covers
// session, sessionid and PHPSESSID; "code" covers OAuth codes; "key" covers
// apikey, api_key, x-api-key and private_key. Read-only.
var secretNameParts = [...]string{
	"key", "token", "secret", "pass", "pwd", "auth", "sig", "cred", "sess", "code", "jwt", "bearer", "private", "cookie",
}

// URL returns raw with its credentials replaced by [Mask]:
//
//   - userinfo: the password (user:REDACTED@), or a lone user name, which is
//     often a token (REDACTED@);
//   - the value of every query or fragment parameter (separated by & or ;,
//     and also ? in a fragment) whose decoded name looks secret (see
//     secretNameParts); a URL inside a value is redacted in turn;
//   - any query or fragment value, bare parameter or path segment that holds
//     a high-entropy run: 20 or more characters of [A-Za-z0-9+/_=-] mixing
//     upper case, lower case and digits, or 32 or more hex digits with both
//     digits and letters (API keys, AWS-style signatures, webhook tokens).
//
// A URL with nothing to redact is returned exactly as given. An input that
// does not parse as a URL returns [Unparseable], never the input. URL never
// panics.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Unparseable
	}
	changed := false
	if u.User != nil {
		changed = true
		if _, ok := u.User.Password(); ok {
			name := u.User.Username()
			if looksLikeCredential(name) {
				name = Mask
			}
			u.User = url.UserPassword(name, Mask)
		} else {
			u.User = url.User(Mask)
		}
	}
	if u.Opaque != "" {
		if p, ok := redactPath(u.Opaque); ok {
			u.Opaque, changed = p, true
		}
	} else if p, ok := redactPath(u.EscapedPath()); ok {
		dec, err := url.PathUnescape(p)
		if err != nil {
			return Unparseable
		}
		u.Path, u.RawPath, changed = dec, p, true
	}
	if q, ok := redactParams(u.RawQuery, "&;"); ok {
		u.RawQuery, changed = q, true
	}
	// Single-page apps put a query in the fragment (#/cb?token=...).
	if f, ok := redactParams(u.EscapedFragment(), "&;?"); ok {
		dec, err := url.PathUnescape(f)
		if err != nil {
			return Unparseable
		}
		u.Fragment, u.RawFragment, changed = dec, f, true
	}
	if !changed {
		return raw
	}
	return u.String()
}

// Error returns err's text with every URL in it redacted by [URL]: the URL
// of a *url.Error in err's chain (which Go's HTTP client quotes in full),
// then every scheme://... token in the text (see [Text]). A nil err gives "".
func Error(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		// url.Error formats its URL with %q, which is strconv.Quote.
		s = strings.ReplaceAll(s, strconv.Quote(ue.URL), strconv.Quote(URL(ue.URL)))
	}
	return Text(s)
}

// Text returns s with every URL in it redacted by [URL]. A URL is found by
// its "scheme://" and runs to the next white space, double quote (unless
// escaped by a backslash), single quote, backquote, '<' or '>', less the
// prose punctuation that closes it ("(URL): ..." keeps its "):"); what is
// left is redacted whole, so that no secret is cut in two.
func Text(s string) string {
	var b strings.Builder
	done := 0 // s[:done] has been written to b
	for from := 0; ; {
		i := strings.Index(s[from:], "://")
		if i < 0 {
			break
		}
		i += from
		from = i + 3
		start := i
		for start > 0 && isSchemeChar(s[start-1]) {
			start--
		}
		for start < i && !isLetter(s[start]) {
			start++
		}
		if start == i || start < done {
			continue
		}
		end := from
		for end < len(s) && !endsURL(s, end) {
			end++
		}
		end = trimProse(s, start, end)
		b.WriteString(s[done:start])
		b.WriteString(URL(s[start:end]))
		done, from = end, end
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// trimProse moves end back over the punctuation of the sentence around the
// URL s[start:end]: a run of ".,;:!?" at its end and, when the URL follows
// an opening parenthesis, the closing one. At most a separator or two of a
// secret value that ends in them is printed.
func trimProse(s string, start, end int) int {
	strip := func() {
		for end > start && strings.IndexByte(".,;:!?", s[end-1]) >= 0 {
			end--
		}
	}
	strip()
	if start > 0 && s[start-1] == '(' && end > start && s[end-1] == ')' {
		end--
		strip()
	}
	return end
}

// redactPath masks each /-separated segment of an escaped path that holds a
// high-entropy run. It reports whether anything was masked.
func redactPath(p string) (string, bool) {
	if len(p) < 20 {
		return p, false
	}
	segs := strings.Split(p, "/")
	changed := false
	for i, s := range segs {
		if looksLikeCredential(s) || looksLikeCredential(unescape(s, url.PathUnescape)) {
			segs[i], changed = Mask, true
		}
	}
	if !changed {
		return p, false
	}
	return strings.Join(segs, "/"), true
}

// redactParams masks secret values in an escaped query or fragment of
// name=value pairs separated by any byte of seps. Separators and untouched
// pairs are kept byte for byte. It reports whether anything was masked.
func redactParams(raw, seps string) (string, bool) {
	if raw == "" {
		return raw, false
	}
	var b strings.Builder
	changed := false
	start := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && strings.IndexByte(seps, raw[i]) < 0 {
			continue
		}
		pair := raw[start:i]
		if red, ok := redactPair(pair); ok {
			pair, changed = red, true
		}
		b.WriteString(pair)
		if i < len(raw) {
			b.WriteByte(raw[i])
		}
		start = i + 1
	}
	if !changed {
		return raw, false
	}
	return b.String(), true
}

func redactPair(pair string) (string, bool) {
	name, value, hasValue := strings.Cut(pair, "=")
	dname := unescape(name, url.QueryUnescape)
	if looksLikeCredential(name) || looksLikeCredential(dname) {
		// A bare token (?TOKEN) or a token used as a name.
		if hasValue && value != "" {
			return Mask + "=" + Mask, true
		}
		return Mask, true
	}
	if value == "" {
		return pair, false
	}
	dvalue := unescape(value, url.QueryUnescape)
	if secretName(dname) || looksLikeCredential(value) || looksLikeCredential(dvalue) {
		return name + "=" + Mask, true
	}
	// A URL in a value (?next=https://...) is redacted in turn.
	if strings.Contains(dvalue, "://") {
		if r := Text(dvalue); r != dvalue {
			return name + "=" + url.QueryEscape(r), true
		}
	}
	return pair, false
}

// secretName reports whether a parameter name looks like it holds a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, part := range secretNameParts {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// looksLikeCredential reports whether s holds a high-entropy run (see URL).
func looksLikeCredential(s string) bool {
	run := 0
	var upper, lower, digit, nonHex bool
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if isCredentialChar(c) {
				run++
				switch {
				case 'A' <= c && c <= 'Z':
					upper = true
					nonHex = nonHex || c > 'F'
				case 'a' <= c && c <= 'z':
					lower = true
					nonHex = nonHex || c > 'f'
				case '0' <= c && c <= '9':
					digit = true
				default:
					nonHex = true
				}
				continue
			}
		}
		if run >= 20 && upper && lower && digit {
			return true
		}
		if run >= 32 && !nonHex && digit && (upper || lower) {
			return true
		}
		run, upper, lower, digit, nonHex = 0, false, false, false, false
	}
	return false
}

func isCredentialChar(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '_' || c == '=' || c == '-'
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isSchemeChar(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// endsURL reports whether s[i] ends a URL found in text.
func endsURL(s string, i int) bool {
	switch c := s[i]; {
	case c <= ' ' || c == 0x7f:
		return true
	case c == '"':
		return i == 0 || s[i-1] != '\\'
	case c == '\'' || c == '`' || c == '<' || c == '>':
		return true
	}
	return false
}

// unescape decodes s, or returns it as is when it is not validly escaped.
func unescape(s string, dec func(string) (string, error)) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if d, err := dec(s); err == nil {
		return d
	}
	return s
}
