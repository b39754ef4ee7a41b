package twilio

import (
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// The benchmarks use a typical incoming-call form (12 parameters, a
// 358-byte signed string):
//
//	go test ./internal/twilio -run '^$' -bench . -benchmem -count 6

func benchRequest(b *testing.B) (*Verifier, *Request) {
	b.Helper()
	call := incomingCall()
	v := mustVerifier(b, testToken)
	return v, &Request{URL: hookURL, Params: call, Signature: Sign(testToken, Canonical(hookURL, call))}
}

// BenchmarkVerify: the request path, a valid signature.
func BenchmarkVerify(b *testing.B) {
	v, r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyMismatch: a forged signature costs both URL variants.
func BenchmarkVerifyMismatch(b *testing.B) {
	v, r := benchRequest(b)
	forged := *r
	forged.Signature = Sign(otherTok, Canonical(hookURL, r.Params))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(&forged); err != ErrNoMatch {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRotation: two active tokens, signed with the second.
func BenchmarkVerifyRotation(b *testing.B) {
	_, r := benchRequest(b)
	v := mustVerifier(b, otherTok, testToken)
	b.ReportAllocs()
	for b.Loop() {
		if i, err := v.Verify(r); i != 1 || err != nil {
			b.Fatal(i, err)
		}
	}
}

// BenchmarkSign: the signed string and its signature (tests, the CLI).
func BenchmarkSign(b *testing.B) {
	call := incomingCall()
	b.ReportAllocs()
	for b.Loop() {
		Sign(testToken, Canonical(hookURL, call))
	}
}

// BenchmarkSignVerify: sign, then verify, the same request.
func BenchmarkSignVerify(b *testing.B) {
	v, r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		r.Signature = Sign(testToken, Canonical(hookURL, r.Params))
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJSON: a JSON request with a 2 KiB body.
func BenchmarkVerifyJSON(b *testing.B) {
	body := []byte(`{"data":"` + strings.Repeat("x", 2038) + `"}`)
	u := hookURL + "&bodySHA256=" + BodyHash(body)
	v := mustVerifier(b, testToken)
	r := &Request{URL: u, Body: body, Signature: Sign(testToken, u)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTwilioGoValidate: twilio-go's validator on the same request,
// for comparison.
func BenchmarkTwilioGoValidate(b *testing.B) {
	_, r := benchRequest(b)
	rv := client.NewRequestValidator(testToken)
	m := toMap(r.Params)
	b.ReportAllocs()
	for b.Loop() {
		if !rv.Validate(r.URL, m, r.Signature) {
			b.Fatal("not valid")
		}
	}
}
