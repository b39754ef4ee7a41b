package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		// Secret-looking parameter names, whatever their case or encoding.
		{"http://127.0.0.1:1/x?apikey=SECRETKEY123&tenant=acme", "http://127.0.0.1:1/x?apikey=REDACTED&tenant=acme"},
		{"HTTP://H/X?APIKEY=S&Tenant=acme", "http://H/X?APIKEY=REDACTED&Tenant=acme"}, // url.Parse lower-cases the scheme
		{"https://h/p?api%5Fkey=S", "https://h/p?api%5Fkey=REDACTED"},
		{"https://h/p?access_token=a&Password=b&pwd=c&client_secret=d&sessionid=e&code=f&sig=g&auth=h&jwt=i&passwd=j&credential=k",
			"https://h/p?access_token=REDACTED&Password=REDACTED&pwd=REDACTED&client_secret=REDACTED&sessionid=REDACTED&code=REDACTED&sig=REDACTED&auth=REDACTED&jwt=REDACTED&passwd=REDACTED&credential=REDACTED"},
		{"https://s3.example/b/o?X-Amz-Credential=AKIA%2F20261201&X-Amz-Date=20261201T000000Z&X-Amz-Signature=abc123",
			"https://s3.example/b/o?X-Amz-Credential=REDACTED&X-Amz-Date=20261201T000000Z&X-Amz-Signature=REDACTED"},
		{"https://h/p?token=abc==&x=1", "https://h/p?token=REDACTED&x=1"},
		{"https://h/p?a=1;token=t", "https://h/p?a=1;token=REDACTED"},
		{"https://h/p?apikey=&x=1", "https://h/p?apikey=&x=1"},
		// High-entropy values, whatever the name; in a path segment too.
		{"https://h/p?q=aB3dE5fG7hJ9kL1mN3pQ5r&n=3", "https://h/p?q=REDACTED&n=3"},
		{"https://h/p?h=0123456789abcdef0123456789abcdef", "https://h/p?h=REDACTED"},
		{"https://h/p?aB3dE5fG7hJ9kL1mN3pQ5rS7t", "https://h/p?REDACTED"},
		{"https://hooks.example/services/T0/B0/aB3dE5fG7hJ9kL1mN3pQ5rS7t", "https://hooks.example/services/T0/B0/REDACTED"},
		{"https://h/bot123456:aB3dE5fG7hJ9kL1mN3pQ5rS7t/send", "https://h/REDACTED/send"},
		// A URL inside a value is redacted in turn.
		{"https://h/login?next=https%3A%2F%2Fx%2F%3Ftoken%3Dt&lang=en", "https://h/login?next=https%3A%2F%2Fx%2F%3Ftoken%3DREDACTED&lang=en"},
		{"https://h/login?next=https://x/?token=t", "https://h/login?next=https%3A%2F%2Fx%2F%3Ftoken%3DREDACTED"},
		// Fragments carry tokens too (OAuth implicit flow).
		{"https://h/cb#access_token=abc&state=x", "https://h/cb#access_token=REDACTED&state=x"},
		{"https://h/app#/cb?code=abc&state=x", "https://h/app#/cb?code=REDACTED&state=x"},
		// Userinfo.
		{"https://user:hunter2@h/p", "https://user:REDACTED@h/p"},
		{"https://tok123@h/p", "https://REDACTED@h/p"},
		{"postgres://app:pw@10.0.0.5/db?sslmode=disable", "postgres://app:REDACTED@10.0.0.5/db?sslmode=disable"},
		// Left alone: ordinary values, identifiers, and the exact text.
		{"https://h/p?q=hello+world&n=3&tenant=acme%20corp", "https://h/p?q=hello+world&n=3&tenant=acme%20corp"},
		{"https://h/p?id=123e4567-e89b-12d3-a456-426614174000", "https://h/p?id=123e4567-e89b-12d3-a456-426614174000"},
		{"https://h/appointments/2026-12-01", "https://h/appointments/2026-12-01"},
		{"/x?apikey=S", "/x?apikey=REDACTED"},
		{"mailto:a@b?token=x", "mailto:a@b?token=REDACTED"},
		{"not a url", "not a url"},
		{"", ""},
		// Unparseable input is never echoed.
		{"http://h/%zz?apikey=S", Unparseable},
		{"http://[::1?apikey=S", Unparseable},
		{"http://h/x?apikey=S\x00", Unparseable},
		{"127.0.0.1:1/x?apikey=S", Unparseable},
	}
	for _, tc := range cases {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	ue := &url.Error{Op: "Post", URL: "http://127.0.0.1:1/x?apikey=SECRETKEY123", Err: refused}
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ue, `Post "http://127.0.0.1:1/x?apikey=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused`},
		{fmt.Errorf("tool getX: %w", ue), `tool getX: Post "http://127.0.0.1:1/x?apikey=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused`},
		// A quote inside the URL is escaped by %q; the whole URL still goes.
		{&url.Error{Op: "Get", URL: `http://h/?apikey=ab"SECRETVALUE`, Err: refused}, `Get "http://h/?apikey=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused`},
		// Unparseable URLs in a *url.Error are replaced whole.
		{&url.Error{Op: "parse", URL: "127.0.0.1:1/x?apikey=SECRETKEY123", Err: errors.New("first path segment in URL cannot contain colon")},
			`parse "<unparseable URL>": first path segment in URL cannot contain colon`},
		// URLs anywhere in the text, any scheme.
		{errors.New("upstream https://u:p@h/x?token=t failed; see http://h/ok and\tPOSTGRES://app:pw@db/x"),
			"upstream https://u:REDACTED@h/x?token=REDACTED failed; see http://h/ok and\tpostgres://app:REDACTED@db/x"},
		{errors.New(`<a href="https://h/x?sig=abc">`), `<a href="https://h/x?sig=REDACTED">`},
		{errors.New("no url here: a://"), "no url here: a://"},
		// The sentence's punctuation stays outside the redacted URL.
		{errors.New("the URL seems to carry a credential (http://h/x?a=1&token=SECRETVALUE): it is redacted"),
			"the URL seems to carry a credential (http://h/x?a=1&token=REDACTED): it is redacted"},
		{errors.New("see http://h/x?token=SECRETVALUE."), "see http://h/x?token=REDACTED."},
		{errors.New("a (b) http://h/x?token=SECRET) c"), "a (b) http://h/x?token=REDACTED c"},
		{errors.New("://x?token=t"), "://x?token=t"},
	}
	for _, tc := range cases {
		if got := Error(tc.err); got != tc.want {
			t.Errorf("Error(%v)\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}

func TestSecretName(t *testing.T) {
	for _, n := range []string{"apikey", "API_KEY", "x-api-key", "token", "access_token", "Secret", "password", "passwd", "pwd",
		"Authorization", "oauth_verifier", "signature", "sig", "X-Amz-Credential", "sessionid", "PHPSESSID", "code", "jwt", "private_key"} {
		if !secretName(n) {
			t.Errorf("%q should look secret", n)
		}
	}
	for _, n := range []string{"tenant", "date", "q", "n", "region", "id", "lang"} {
		if secretName(n) {
			t.Errorf("%q should not look secret", n)
		}
	}
}

// FuzzURL: URL never panics, and a value planted in a parameter with a
// secret name, or as a userinfo password, never appears in the output,
// whatever surrounds it; Error on a *url.Error carrying it neither.
func FuzzURL(f *testing.F) {
	f.Add("https://h.example/appointments?tenant=acme", "hunter2-secret", uint8(0))
	f.Add("http://127.0.0.1:1/x", "SECRETKEY123", uint8(1))
	f.Add("http://h/x?a=1;b=2#frag", "s3cr3t value+/=", uint8(2))
	f.Add("http://u@h/%zz", "x", uint8(3))
	f.Add("mailto:a@b", "tok", uint8(4))
	f.Add("/relative/path?x", "\x00\"quoted\"", uint8(5))
	f.Add("http://[::1]:8080/p?q=%", "%41%42", uint8(6))
	f.Add("", "", uint8(7))
	names := []string{"apikey", "token", "Password", "client_secret", "X-Amz-Signature", "sessionid", "code", "api%5Fkey"}
	f.Fuzz(func(t *testing.T, base, secret string, pick uint8) {
		// The property needs a value that cannot show up any other way: a
		// marker absent from the base, from REDACTED and from the fixed
		// strings, so any occurrence in the output is a leak.
		const marker = "ZQXV"
		if strings.Contains(base, marker) {
			return
		}
		planted := marker + secret
		var raw string
		if pick%4 == 3 {
			// As a userinfo password, in front of the base's host and path.
			rest, ok := strings.CutPrefix(base, "http://")
			if !ok {
				return
			}
			raw = "http://user:" + url.QueryEscape(planted) + "@" + rest
		} else {
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			raw = base + sep + names[int(pick)%len(names)] + "=" + url.QueryEscape(planted)
		}
		out := URL(raw)
		if strings.Contains(out, marker) {
			t.Fatalf("URL(%q) = %q leaks the planted value", raw, out)
		}
		_ = URL(base) // must not panic on anything
		e := Error(&url.Error{Op: "Get", URL: raw, Err: errors.New("connection refused")})
		if strings.Contains(e, marker) {
			t.Fatalf("Error(url.Error{%q}) = %q leaks the planted value", raw, e)
		}
	})
}
