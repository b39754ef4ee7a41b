package twilio

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// fuzzParams splits "name=value&name=value" without unescaping, so names
// and values can hold any bytes, invalid UTF-8 included, and repeat.
func fuzzParams(form string) []Param {
	if form == "" {
		return nil
	}
	var ps []Param
	for _, pair := range strings.Split(form, "&") {
		name, value, _ := strings.Cut(pair, "=")
		ps = append(ps, Param{Name: name, Value: value})
	}
	return ps
}

// FuzzVerify: nothing panics on any URL, form, body or signature; what
// Sign makes over any URL variant Verify accepts with the right token,
// and names that token; a body that does not hash to bodySHA256 is
// refused; one more parameter breaks the signature; the order of the
// parameters never matters; a port added is removed again; and where
// twilio-go can judge the request (a URL net/url prints unchanged, no
// repeated names), it accepts what Verify accepts.
//
//	go test ./internal/twilio -fuzz FuzzVerify
func FuzzVerify(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		var form []string
		for _, p := range v.Params {
			form = append(form, p[0]+"="+p[1])
		}
		body := ""
		if v.Body != nil {
			body = *v.Body
		}
		f.Add(v.URL, strings.Join(form, "&"), []byte(body), "12345", v.Signature)
	}
	f.Add("https://[::1]:8443/a?bodySHA256=&x", "a=&=b&a=1", []byte{0xff}, "t", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("wss://user:p@ss@host/stream#frag", "\x00=\xff", []byte(nil), "\xff", "\r\n")
	f.Fuzz(func(t *testing.T, rawURL, form string, body []byte, token, sig string) {
		if token == "" || token == "other" {
			token = "t" + token
		}
		params := fuzzParams(form)
		v := mustVerifier(t, "other", token)

		// Any input: no panic, and a verdict that is one of the four.
		if i, err := v.Verify(&Request{URL: rawURL, Params: params, Body: body, Signature: sig}); err != nil {
			if i != -1 || !(errors.Is(err, ErrMissingSignature) || errors.Is(err, ErrMalformedSignature) || errors.Is(err, ErrNoMatch) || errors.Is(err, ErrBodyHashMismatch)) {
				t.Fatalf("Verify = %d, %v", i, err)
			}
		}

		hash, isJSON := BodySHA256(rawURL)
		signed := params
		if isJSON {
			signed = nil
		}
		bodyOK := !isJSON || hash == BodyHash(body)
		variants := URLVariants(rawURL)
		if variants[0] != rawURL || len(variants) > 2 {
			t.Fatalf("URLVariants(%q) = %q", rawURL, variants)
		}
		if len(variants) == 2 {
			back := URLVariants(variants[1])
			if len(back) != 2 {
				t.Fatalf("the variant %q of %q has no variant", variants[1], rawURL)
			}
			if len(variants[1]) > len(rawURL) && back[1] != rawURL {
				t.Fatalf("a port added to %q is not removed again: %q", rawURL, back[1])
			}
		}
		canonical := Canonical(rawURL, signed)
		if got := Canonical(rawURL, reversed(signed)); got != canonical {
			t.Fatalf("the parameters' order changes the signed string:\n%q\n%q", canonical, got)
		}
		if !strings.HasPrefix(canonical, rawURL) {
			t.Fatalf("the signed string does not start with the URL")
		}

		for _, u := range variants {
			s := Sign(token, Canonical(u, signed))
			i, err := v.Verify(&Request{URL: rawURL, Params: params, Body: body, Signature: s})
			switch {
			case bodyOK && (i != 1 || err != nil):
				t.Fatalf("signed over %q: Verify = %d, %v; want token 1", u, i, err)
			case !bodyOK && err != ErrBodyHashMismatch:
				t.Fatalf("signed over %q, body not hashing to %q: Verify = %d, %v", u, hash, i, err)
			}
			if extra := (Param{Name: "\x00fuzz", Value: "x"}); !isJSON && !slices.Contains(params, extra) {
				more := append(slices.Clone(params), extra)
				if _, err := v.Verify(&Request{URL: rawURL, Params: more, Body: body, Signature: s}); err != ErrNoMatch {
					t.Fatalf("a parameter added: Verify = %v, want ErrNoMatch", err)
				}
			}
			if theirs, judged := twilioGoVerdict(token, rawURL, params, body, s); judged && theirs != bodyOK {
				t.Fatalf("signed over %q: twilio-go says %v, voicegate %v", u, theirs, bodyOK)
			}
		}
	})
}

// twilioGoVerdict asks twilio-go, when it can judge the request the way
// Twilio's libraries are meant to: the URL is one net/url prints unchanged
// (twilio-go rebuilds its variants through net/url) with a host that is
// not an IPv6 literal (it splits the host on ":"), and no name repeats
// (it keeps one value per name).
func twilioGoVerdict(token, rawURL string, params []Param, body []byte, sig string) (valid, judged bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.String() != rawURL || (u.Scheme != "http" && u.Scheme != "https") ||
		u.Host == "" || strings.HasPrefix(u.Host, "[") || strings.Count(u.Host, ":") > 1 || strings.HasSuffix(u.Host, ":") {
		return false, false
	}
	m := toMap(params)
	if len(m) != len(params) {
		return false, false
	}
	rv := client.NewRequestValidator(token)
	if _, isJSON := BodySHA256(rawURL); isJSON {
		return rv.ValidateBody(rawURL, body, sig), true
	}
	return rv.Validate(rawURL, m, sig), true
}
