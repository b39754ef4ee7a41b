package twilio

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// raceEnabled is set by race_test.go: the race detector makes sync.Pool
// drop items at random, so allocation counts mean nothing under it.
var raceEnabled bool

type vectorFile struct {
	Token   string   `json:"token"`
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name      string      `json:"name"`
	Source    string      `json:"source"`
	URL       string      `json:"url"`
	Params    [][2]string `json:"params"`
	Body      *string     `json:"body"`
	Signature string      `json:"signature"`
	Want      string      `json:"want"`
}

func (v vector) request() *Request {
	r := &Request{URL: v.URL, Signature: v.Signature}
	for _, p := range v.Params {
		r.Params = append(r.Params, Param{Name: p[0], Value: p[1]})
	}
	if v.Body != nil {
		r.Body = []byte(*v.Body)
	}
	return r
}

// wantErr maps a vector's "want" to Verify's error.
var wantErr = map[string]error{
	"valid":              nil,
	"missing":            ErrMissingSignature,
	"malformed":          ErrMalformedSignature,
	"no_match":           ErrNoMatch,
	"body_hash_mismatch": ErrBodyHashMismatch,
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustVerifier(t testing.TB, tokens ...string) *Verifier {
	t.Helper()
	v, err := NewVerifier(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVectors: every published vector of Twilio's helper libraries gets its
// expected verdict, and a valid one is Sign over one of the URL variants.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	v := mustVerifier(t, f.Token)
	for _, vec := range f.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			want, known := wantErr[vec.Want]
			if !known {
				t.Fatalf("unknown want %q", vec.Want)
			}
			r := vec.request()
			i, err := v.Verify(r)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("Verify = %d, %v; want %v (source: %s)", i, err, want, vec.Source)
			}
			if want == nil && i != 0 {
				t.Errorf("Verify matched token %d, want 0", i)
			}
			if want != nil && i != -1 {
				t.Errorf("Verify failed with token index %d, want -1", i)
			}
			if want != nil {
				return
			}
			params := r.Params
			if _, ok := BodySHA256(r.URL); ok {
				params = nil
			}
			var signed []string
			for _, u := range URLVariants(r.URL) {
				signed = append(signed, Sign(f.Token, Canonical(u, params)))
			}
			if !slices.Contains(signed, vec.Signature) {
				t.Errorf("Sign over the URL variants gives %v, none is %s", signed, vec.Signature)
			}
		})
	}
}

// TestVectorsCoverReference: the vectors the reference (twilio.md §2.6)
// lists stay in the file.
func TestVectorsCoverReference(t *testing.T) {
	f := loadVectors(t)
	have := map[string]bool{}
	for _, v := range f.Vectors {
		have[v.Signature+" "+v.URL+" "+v.Want] = true
	}
	base := "https://mycompany.com/myapp.php?foo=1&bar=2"
	for _, want := range []struct{ sig, url, verdict string }{
		{"RSOYDt4T1cUTdK1PDd93/VVr8B8=", base, "valid"},
		{"kvajT1Ptam85bY51eRf/AJRuM3w=", "https://mycompany.com:443/myapp.php?foo=1&bar=2", "valid"},
		{"83O6e2vORAoJHUNzJjDWN1jz+BA=", base, "valid"},
		{"vOEb5UThFn24KEfnOFLQY2AE5FY=", base, "valid"},
		{"95+Bu0JVPi0r/SsESZCVf0dWAjw=", base, "no_match"},
		{"a9nBmqA0ju/hNViExpshrM61xv4=", base + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620", "valid"},
	} {
		if !have[want.sig+" "+want.url+" "+want.verdict] {
			t.Errorf("no vector %s over %s with verdict %q", want.sig, want.url, want.verdict)
		}
	}
}

func params(kv ...string) []Param {
	var ps []Param
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, Param{Name: kv[i], Value: kv[i+1]})
	}
	return ps
}

// TestCanonical: names in byte order (upper case first, a prefix first);
// a repeated name's distinct values sorted; the URL byte for byte; the
// caller's slice untouched.
func TestCanonical(t *testing.T) {
	const u = "https://Example.COM/a%20b/c?x=it's+a%27b"
	for _, tc := range []struct {
		name   string
		params []Param
		want   string
	}{
		{"none", nil, u},
		{"byte order", params("b", "1", "B", "2", "a", "3", "_", "4"), u + "B2_4a3b1"},
		{"prefix first", params("ReasonConferenceEnded", "test", "Reason", "Participant"), u + "ReasonParticipantReasonConferenceEndedtest"},
		{"repeated name: values sorted", params("Digits", "5678", "Sid", "CA1", "Digits", "1234"), u + "Digits1234Digits5678SidCA1"},
		{"repeated name: duplicates once", params("A", "x", "A", "x", "A", "w", "A", "x"), u + "AwAx"},
		{"same value under two names", params("A", "x", "B", "x"), u + "AxBx"},
		{"empty values and name", params("Empty", "", "", "v", "Empty", ""), u + "vEmpty"},
		{"kept as given: spaces, +, %, &, =, unicode", params("Body", " a+b %41 & c=d ", "Zoë", "☎ 😀"), u + "Body a+b %41 & c=d Zoë☎ 😀"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.params)
			if got := Canonical(u, tc.params); got != tc.want {
				t.Errorf("Canonical\n got %q\nwant %q", got, tc.want)
			}
			if !slices.Equal(before, tc.params) {
				t.Errorf("Canonical reordered its input: %v", tc.params)
			}
		})
	}
}

// TestCanonicalManyParams: past the stack copy (32 parameters) the result
// is the same.
func TestCanonicalManyParams(t *testing.T) {
	var ps []Param
	var want strings.Builder
	want.WriteString("https://h/")
	for i := 99; i >= 0; i-- {
		ps = append(ps, Param{Name: fmt.Sprintf("P%03d", i), Value: "v"})
	}
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&want, "P%03dv", i)
	}
	if got := Canonical("https://h/", ps); got != want.String() {
		t.Errorf("Canonical of 100 params\n got %q\nwant %q", got, want.String())
	}
}

// TestURLVariants: the port toggled as Twilio's libraries toggle it (any
// port removed; :443 or :80 added), everything else byte for byte; no
// variant for what cannot be read.
func TestURLVariants(t *testing.T) {
	for _, tc := range []struct {
		url, want string // want "" means no variant
	}{
		{"https://example.com/hook?a=1", "https://example.com:443/hook?a=1"},
		{"https://example.com:443/hook?a=1", "https://example.com/hook?a=1"},
		{"http://example.com/hook", "http://example.com:80/hook"},
		{"http://example.com:80/hook", "http://example.com/hook"},
		{"https://example.com:8443/hook", "https://example.com/hook"},
		{"http://example.com:1234/hook", "http://example.com/hook"},
		{"https://example.com:80/hook", "https://example.com/hook"},
		{"HTTPS://Example.COM/A?B=C", "HTTPS://Example.COM:443/A?B=C"},
		{"https://example.com", "https://example.com:443"},
		{"https://example.com?x=1", "https://example.com:443?x=1"},
		{"https://example.com#frag", "https://example.com:443#frag"},
		{"https://user:pass@example.com/h", "https://user:pass@example.com:443/h"},
		{"https://user:pass@example.com:443/h", "https://user:pass@example.com/h"},
		{"https://us@r:p@ss@example.com:443/h", "https://us@r:p@ss@example.com/h"},
		{"https://[2001:db8::1]/h", "https://[2001:db8::1]:443/h"},
		{"https://[2001:db8::1]:8443/h", "https://[2001:db8::1]/h"},
		{"wss://media.example.com/stream", "wss://media.example.com:443/stream"},
		{"ws://media.example.com/stream", "ws://media.example.com:80/stream"},
		{"ftp://example.com/x", "ftp://example.com:80/x"},
		{"https://example.com/a?next=http://other:99/b", "https://example.com:443/a?next=http://other:99/b"},
		{"https://example.com:/h", ""},
		{"https://example.com:44x/h", ""},
		{"https://2001:db8::1/h", ""},
		{"https://[2001:db8::1/h", ""},
		{"https://[::1]x/h", ""},
		{"https:///h", ""},
		{"https://user@/h", ""},
		{"//example.com/h", ""},
		{"/hook?a=1", ""},
		{"1http://example.com/", ""},
		{"", ""},
	} {
		got := URLVariants(tc.url)
		want := []string{tc.url}
		if tc.want != "" {
			want = append(want, tc.want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("URLVariants(%q)\n got %q\nwant %q", tc.url, got, want)
		}
	}
}

// TestBodySHA256: the first value of the decoded name, as net/url reads a
// query; an empty value or no value is no mark; the fragment is not query.
func TestBodySHA256(t *testing.T) {
	h := "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	for _, tc := range []struct {
		url, want string
		ok        bool
	}{
		{"https://h/p?bodySHA256=" + h, h, true},
		{"https://h/p?a=1&bodySHA256=" + h + "&b=2", h, true},
		{"https://h/p?bodySHA256=abc&bodySHA256=" + h, "abc", true},
		{"https://h/p?body%53HA256=" + h, h, true},
		{"https://h/p?bodySHA256=a%62c", "abc", true},
		{"https://h/p?bodySHA256=a+c", "a c", true},
		{"https://h/p?bodySHA256=", "", false},
		{"https://h/p?bodySHA256", "", false},
		{"https://h/p?bodySHA256=&bodySHA256=" + h, "", false},
		{"https://h/p?bodysha256=" + h, "", false},
		{"https://h/p?x=bodySHA256", "", false},
		{"https://h/bodySHA256=" + h, "", false},
		{"https://h/p#?bodySHA256=" + h, "", false},
		{"https://h/p?a=1#bodySHA256=" + h, "", false},
		{"https://h/p?bodySHA256=" + h + ";x=1", "", false},
		{"https://h/p?x;y&bodySHA256=" + h, h, true},
		{"https://h/p?bodySHA256=%zz&bodySHA256=" + h, h, true},
		{"https://h/p?%zz=1&bodySHA256=" + h, h, true},
		{"https://h/p?" + strings.Repeat("&", maxQueryParams) + "bodySHA256=" + h, "", false},
	} {
		got, ok := BodySHA256(tc.url)
		if got != tc.want || ok != tc.ok {
			t.Errorf("BodySHA256(%.80q) = %q, %v; want %q, %v", tc.url, got, ok, tc.want, tc.ok)
		}
	}
}

// incomingCall is a typical incoming-call form: 12 parameters.
func incomingCall() []Param {
	return params(
		"AccountSid", "ACf1e2d3c4b5a69788796a5b4c3d2e1f00",
		"ApiVersion", "2010-04-01",
		"CallSid", "CA5f0e1d2c3b4a5968778695a4b3c2d1e0",
		"CallStatus", "ringing",
		"Called", "+14155550100",
		"CalledCountry", "US",
		"Caller", "+14155550199",
		"CallerCountry", "US",
		"Direction", "inbound",
		"From", "+14155550199",
		"To", "+14155550100",
		"CallToken", "%7B%22parentCallInfoToken%22%3A%22eyJhbGciOiJFUzI1NiJ9%22%7D",
	)
}

const (
	testToken = "0123456789abcdef0123456789abcdef"
	otherTok  = "fedcba9876543210fedcba9876543210"
	hookURL   = "https://voice.example.com/hooks/twilio/main?tenant=acme"
)

// TestVerifyRejections: every failure reason, and what must still pass.
func TestVerifyRejections(t *testing.T) {
	call := incomingCall()
	good := Sign(testToken, Canonical(hookURL, call))
	jsonBody := []byte(`{"CallSid":"CA1","Status":"completed"}`)
	jsonURL := hookURL + "&bodySHA256=" + BodyHash(jsonBody)
	jsonSig := Sign(testToken, jsonURL)
	upperURL := hookURL + "&bodySHA256=" + strings.ToUpper(BodyHash(jsonBody))
	notHexURL := hookURL + "&bodySHA256=not-a-hash"
	emptyHashURL := hookURL + "&bodySHA256="
	replaced := func(ps []Param, name, value string) []Param {
		out := slices.Clone(ps)
		for i := range out {
			if out[i].Name == name {
				out[i].Value = value
			}
		}
		return out
	}
	// flipBits changes the last significant character without touching
	// the padding: still 20 bytes, another MAC.
	flip := func(s string) string {
		c := byte('A')
		if s[26] == 'A' {
			c = 'B'
		}
		return s[:26] + string(c) + s[27:]
	}
	for _, tc := range []struct {
		name string
		r    Request
		want error
	}{
		{"valid", Request{URL: hookURL, Params: call, Signature: good}, nil},
		{"valid, params in another order", Request{URL: hookURL, Params: reversed(call), Signature: good}, nil},
		{"valid, a param repeated with the same value", Request{URL: hookURL, Params: append(slices.Clone(call), call[0]), Signature: good}, nil},
		{"valid, signed with :443 added", Request{URL: hookURL, Params: call, Signature: Sign(testToken, Canonical("https://voice.example.com:443/hooks/twilio/main?tenant=acme", call))}, nil},
		{"valid JSON", Request{URL: jsonURL, Body: jsonBody, Signature: jsonSig}, nil},
		{"valid JSON, form params ignored", Request{URL: jsonURL, Body: jsonBody, Params: call, Signature: jsonSig}, nil},
		{"valid: empty bodySHA256 is a form request", Request{URL: emptyHashURL, Params: call, Signature: Sign(testToken, Canonical(emptyHashURL, call))}, nil},

		{"missing", Request{URL: hookURL, Params: call}, ErrMissingSignature},
		{"malformed: not base64", Request{URL: hookURL, Params: call, Signature: "WRONG_SIGNATURE"}, ErrMalformedSignature},
		{"malformed: 28 characters, not base64", Request{URL: hookURL, Params: call, Signature: "!" + good[1:]}, ErrMalformedSignature},
		{"malformed: URL-safe alphabet", Request{URL: hookURL, Params: call, Signature: "-_" + good[2:]}, ErrMalformedSignature},
		{"malformed: padding dropped", Request{URL: hookURL, Params: call, Signature: strings.TrimRight(good, "=")}, ErrMalformedSignature},
		{"malformed: padding bits set", Request{URL: hookURL, Params: call, Signature: good[:26] + string(good[26]^1) + "="}, ErrMalformedSignature},
		{"malformed: trailing space", Request{URL: hookURL, Params: call, Signature: good + " "}, ErrMalformedSignature},
		{"malformed: newline inside", Request{URL: hookURL, Params: call, Signature: good[:10] + "\n" + good[10:27]}, ErrMalformedSignature},
		{"malformed: hex", Request{URL: hookURL, Params: call, Signature: "0123456789abcdef0123456789abcdef01234567"}, ErrMalformedSignature},
		{"malformed: base64 of 21 bytes", Request{URL: hookURL, Params: call, Signature: "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, ErrMalformedSignature},

		{"no match: other token", Request{URL: hookURL, Params: call, Signature: Sign(otherTok, Canonical(hookURL, call))}, ErrNoMatch},
		{"no match: one bit of the MAC", Request{URL: hookURL, Params: call, Signature: flip(good)}, ErrNoMatch},
		{"no match: a value changed", Request{URL: hookURL, Params: replaced(call, "CallStatus", "completed"), Signature: good}, ErrNoMatch},
		{"no match: a value trimmed by a framework", Request{URL: hookURL, Params: call, Signature: Sign(testToken, Canonical(hookURL, replaced(call, "CallStatus", "ringing ")))}, ErrNoMatch},
		{"no match: a param added", Request{URL: hookURL, Params: append(slices.Clone(call), Param{"Digits", "1"}), Signature: good}, ErrNoMatch},
		{"no match: a param dropped", Request{URL: hookURL, Params: call[1:], Signature: good}, ErrNoMatch},
		{"no match: a repeated name's second value", Request{URL: hookURL, Params: append(slices.Clone(call), Param{"From", "+1"}), Signature: good}, ErrNoMatch},
		{"no match: query param moved into the form", Request{URL: "https://voice.example.com/hooks/twilio/main", Params: append(slices.Clone(call), Param{"tenant", "acme"}), Signature: good}, ErrNoMatch},
		{"no match: http instead of https", Request{URL: strings.Replace(hookURL, "https:", "http:", 1), Params: call, Signature: good}, ErrNoMatch},
		{"no match: internal host", Request{URL: strings.Replace(hookURL, "voice.example.com", "10.0.0.7:3000", 1), Params: call, Signature: good}, ErrNoMatch},
		{"no match: host case", Request{URL: strings.Replace(hookURL, "voice.", "Voice.", 1), Params: call, Signature: good}, ErrNoMatch},
		{"no match: path prefix stripped", Request{URL: strings.Replace(hookURL, "/hooks", "", 1), Params: call, Signature: good}, ErrNoMatch},
		{"no match: trailing slash", Request{URL: strings.Replace(hookURL, "main?", "main/?", 1), Params: call, Signature: good}, ErrNoMatch},
		{"no match: query re-encoded", Request{URL: hookURL + "&q=it%27s", Params: call, Signature: Sign(testToken, Canonical(hookURL+"&q=it's", call))}, ErrNoMatch},
		{"no match: signed by key+value order", Request{URL: hookURL, Params: params("Reason", "Participant", "ReasonConferenceEnded", "test"), Signature: Sign(testToken, hookURL+"ReasonConferenceEndedtestReasonParticipant")}, ErrNoMatch},
		{"valid: without bodySHA256 the body is not read", Request{URL: hookURL, Body: jsonBody, Signature: Sign(testToken, hookURL)}, nil},
		{"no match: JSON URL signed with its params", Request{URL: jsonURL, Body: jsonBody, Params: call, Signature: Sign(testToken, Canonical(jsonURL, call))}, ErrNoMatch},
		{"no match: bodySHA256 swapped, signature not", Request{URL: hookURL + "&bodySHA256=" + BodyHash([]byte("{}")), Body: []byte("{}"), Signature: jsonSig}, ErrNoMatch},

		{"body hash mismatch: body changed", Request{URL: jsonURL, Body: []byte(`{"CallSid": "CA1", "Status": "completed"}`), Signature: jsonSig}, ErrBodyHashMismatch},
		{"body hash mismatch: no body", Request{URL: jsonURL, Signature: jsonSig}, ErrBodyHashMismatch},
		{"body hash mismatch: upper-case hex", Request{URL: upperURL, Body: jsonBody, Signature: Sign(testToken, upperURL)}, ErrBodyHashMismatch},
		{"body hash mismatch: not hex", Request{URL: notHexURL, Body: jsonBody, Signature: Sign(testToken, notHexURL)}, ErrBodyHashMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, testToken)
			i, err := v.Verify(&tc.r)
			if err != tc.want {
				t.Fatalf("Verify = %d, %v; want %v", i, err, tc.want)
			}
			if (err == nil) != (i == 0) {
				t.Errorf("Verify = %d, %v: index 0 on success, -1 on failure", i, err)
			}
		})
	}
}

func reversed(ps []Param) []Param {
	out := slices.Clone(ps)
	slices.Reverse(out)
	return out
}

// TestVerifyRotation: each of several active tokens verifies, and Verify
// names the one that did.
func TestVerifyRotation(t *testing.T) {
	third := "00000000000000000000000000000000"
	v := mustVerifier(t, testToken, otherTok)
	call := incomingCall()
	for _, tc := range []struct {
		token string
		want  int
		err   error
	}{{testToken, 0, nil}, {otherTok, 1, nil}, {third, -1, ErrNoMatch}} {
		for _, u := range URLVariants(hookURL) {
			i, err := v.Verify(&Request{URL: hookURL, Params: call, Signature: Sign(tc.token, Canonical(u, call))})
			if i != tc.want || err != tc.err {
				t.Errorf("signed with token %.4s… over %s: Verify = %d, %v; want %d, %v", tc.token, u, i, err, tc.want, tc.err)
			}
		}
	}
}

// TestNewVerifierFailsClosed: no token, or an empty one, is refused.
func TestNewVerifierFailsClosed(t *testing.T) {
	for _, tokens := range [][]string{nil, {}, {""}, {testToken, ""}} {
		if v, err := NewVerifier(tokens); err == nil || v != nil {
			t.Errorf("NewVerifier(%q) = %v, %v; want an error", tokens, v, err)
		}
	}
}

// TestVerifyConcurrent: one Verifier serves many goroutines (run with
// -race).
func TestVerifyConcurrent(t *testing.T) {
	v := mustVerifier(t, otherTok, testToken)
	call := incomingCall()
	good := &Request{URL: hookURL, Params: call, Signature: Sign(testToken, Canonical(hookURL, call))}
	bad := &Request{URL: hookURL, Params: call[1:], Signature: good.Signature}
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			for n := 0; n < 200; n++ {
				if i, err := v.Verify(good); i != 1 || err != nil {
					done <- fmt.Errorf("good: %d, %v", i, err)
					return
				}
				if _, err := v.Verify(bad); err != ErrNoMatch {
					done <- fmt.Errorf("bad: %v", err)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestVerifyAllocations: on the request path a verification of a typical
// form allocates nothing, valid or not.
func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	v := mustVerifier(t, otherTok, testToken)
	call := incomingCall()
	good := &Request{URL: hookURL, Params: call, Signature: Sign(testToken, Canonical(hookURL, call))}
	bad := &Request{URL: hookURL, Params: call[1:], Signature: good.Signature}
	jsonBody := []byte(`{"a":1}`)
	jsonURL := hookURL + "&bodySHA256=" + BodyHash(jsonBody)
	js := &Request{URL: jsonURL, Body: jsonBody, Signature: Sign(testToken, jsonURL)}
	for name, r := range map[string]*Request{"valid": good, "invalid": bad, "json": js} {
		if n := testing.AllocsPerRun(200, func() { v.Verify(r) }); n != 0 {
			t.Errorf("Verify (%s): %v allocations, want 0", name, n)
		}
	}
}

// TestSignedParams: the distinct parameters, in signing order.
func TestSignedParams(t *testing.T) {
	got := SignedParams(params("b", "2", "a", "1", "b", "1", "b", "2"))
	if want := params("a", "1", "b", "1", "b", "2"); !slices.Equal(got, want) {
		t.Errorf("SignedParams = %v, want %v", got, want)
	}
	if got := SignedParams(nil); got != nil {
		t.Errorf("SignedParams(nil) = %v", got)
	}
}
