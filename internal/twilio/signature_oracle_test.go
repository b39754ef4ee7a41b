package twilio

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// The oracle: Twilio's own Go validator (github.com/twilio/twilio-go
// v1.31.0, client.RequestValidator, a test-only dependency) must reach the
// same verdict as Verify on thousands of generated requests, valid and
// tampered. twilio-go keeps one value per name, so the generated forms
// never repeat a name; it re-serialises URLs through net/url, so every
// generated URL round-trips through url.Parse unchanged (as Twilio's
// requests do). Where the two disagree on purpose — repeated names, IPv6
// hosts, URLs net/url rewrites — signature_test.go pins our behaviour.

// oracleRand is deterministic: a failure is reproducible.
func oracleRand() *rand.Rand { return rand.New(rand.NewPCG(10, 2026)) }

// pick returns one element of xs.
func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

// randText is a name or value with the characters that break naive
// canonicalisation: spaces, +, %, &, =, quotes, unicode, and sometimes
// nothing at all.
func randText(rng *rand.Rand, maxLen int) string {
	alphabet := []string{
		"a", "b", "Z", "0", "9", " ", "+", "%", "&", "=", "?", "#", "/", ":", "@", "'", "\"", ".", "-", "_", "~",
		"%20", "%2B", "%41", "é", "ü", "ß", "☎", "日", "😀", "\u200b", "\t",
	}
	var b strings.Builder
	for n := rng.IntN(maxLen + 1); n > 0; n-- {
		b.WriteString(pick(rng, alphabet...))
	}
	return b.String()
}

// twilioNames are real voice webhook parameter names.
var twilioNames = []string{
	"AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "CalledCity", "CalledCountry", "CalledState",
	"CalledZip", "Caller", "CallerCity", "CallerCountry", "CallerName", "CallerState", "CallerZip", "Digits",
	"Direction", "ForwardedFrom", "From", "FromCity", "FromCountry", "SpeechResult", "StirVerstat", "To", "ToCity",
	"Reason", "ReasonConferenceEnded", "SipHeader_X-Tenant", "MessagingBinding.Address", "callsid", "from", "_x",
}

// randParams returns a form with distinct names.
func randParams(rng *rand.Rand) []Param {
	n := rng.IntN(16)
	seen := map[string]bool{}
	var ps []Param
	for len(ps) < n {
		name := pick(rng, twilioNames...)
		if rng.IntN(3) == 0 {
			name = randText(rng, 8)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		value := ""
		if rng.IntN(6) != 0 {
			value = randText(rng, 24)
		}
		ps = append(ps, Param{Name: name, Value: value})
	}
	return ps
}

// randQueryPart encodes random text the ways a configured URL may carry
// it: form-escaped, path-escaped, or raw.
func randQueryPart(rng *rand.Rand) string {
	s := randText(rng, 10)
	switch rng.IntN(3) {
	case 0:
		return url.QueryEscape(s)
	case 1:
		return url.PathEscape(s)
	}
	return strings.NewReplacer("&", "%26", "#", "%23", "=", "%3D", "\t", "%09", "%", "%25").Replace(s)
}

// randURL returns a URL that net/url parses and prints unchanged, or ""
// when the draw does not.
func randURL(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString(pick(rng, "https", "https", "https", "http"))
	b.WriteString("://")
	b.WriteString(pick(rng, "", "", "", "", "", "user@", "user:pass@"))
	b.WriteString(pick(rng, "voice.example.com", "Voice.Example.COM", "hooks.acme-corp.io", "a.b.c.d.example.org", "10.1.2.3", "localhost"))
	b.WriteString(pick(rng, "", "", "", ":443", ":80", ":8443", ":1234", ":3000"))
	for n := rng.IntN(4); n > 0; n-- {
		b.WriteString("/")
		b.WriteString(pick(rng, "hooks", "twilio", "voice", "v1", "app.php", "a%20b", "%C3%A9t%C3%A9", "it's", "x~y", "%2F", "a:b", "a@b"))
	}
	if rng.IntN(4) != 0 {
		b.WriteString("?")
		for n := rng.IntN(5); n > 0; n-- {
			if n < 4 {
				b.WriteString("&")
			}
			b.WriteString(randQueryPart(rng))
			if rng.IntN(5) != 0 {
				b.WriteString("=")
				b.WriteString(randQueryPart(rng))
			}
		}
	}
	s := b.String()
	if u, err := url.Parse(s); err != nil || u.String() != s {
		return ""
	}
	if _, ok := BodySHA256(s); ok {
		return ""
	}
	return s
}

func toMap(ps []Param) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Name] = p.Value
	}
	return m
}

// oracleCase is one request both validators judge.
type oracleCase struct {
	kind string
	url  string
	ps   []Param
	body []byte // JSON requests (URL with bodySHA256) and form bodies
	form bool   // body is the form, checked by ValidateBody
	sig  string
}

type oracleTally struct{ valid, invalid int }

// agree checks one case with both validators.
func agree(t *testing.T, tally map[string]*oracleTally, token string, c oracleCase) {
	t.Helper()
	v := mustVerifier(t, token)
	rv := client.NewRequestValidator(token)
	r := &Request{URL: c.url, Params: c.ps, Body: c.body, Signature: c.sig}
	var theirs bool
	switch {
	case c.form:
		vals, err := url.ParseQuery(string(c.body))
		if err != nil {
			t.Fatalf("%s: generated form %q: %v", c.kind, c.body, err)
		}
		r.Params = AppendValues(nil, vals)
		theirs = rv.ValidateBody(c.url, c.body, c.sig)
	case c.body != nil:
		theirs = rv.ValidateBody(c.url, c.body, c.sig)
	default:
		theirs = rv.Validate(c.url, toMap(c.ps), c.sig)
	}
	_, err := v.Verify(r)
	ours := err == nil
	if ours != theirs {
		t.Errorf("%s: voicegate %v (%v), twilio-go %v\n url %q\n params %q\n body %q\n signature %q\n signed %q",
			c.kind, ours, err, theirs, c.url, c.ps, c.body, c.sig, Canonical(c.url, r.Params))
	}
	k := tally[c.kind]
	if k == nil {
		k = &oracleTally{}
		tally[c.kind] = k
	}
	if ours {
		k.valid++
	} else {
		k.invalid++
	}
}

// TestOracleTwilioGo: voicegate and twilio-go agree on generated form
// requests and their tamperings.
func TestOracleTwilioGo(t *testing.T) {
	rng := oracleRand()
	tally := map[string]*oracleTally{}
	const requests = 3000
	made, drawn := 0, 0
	for made < requests {
		drawn++
		u := randURL(rng)
		if u == "" {
			continue
		}
		made++
		token := pick(rng, testToken, otherTok, "12345", randText(rng, 40)+"x")
		ps := randParams(rng)
		sig := Sign(token, Canonical(u, ps))
		cases := []oracleCase{{kind: "as signed", url: u, ps: ps, sig: sig}}
		for _, variant := range URLVariants(u)[1:] {
			cases = append(cases, oracleCase{kind: "signed over the port variant", url: u, ps: ps, sig: Sign(token, Canonical(variant, ps))})
		}
		// A signature over another port (twilio-go, like us, then tries
		// the URL as given and without its port).
		_, insert, colon, end, _ := locatePort(u)
		other := u[:insert] + ":9999" + u[insert:]
		if colon >= 0 {
			other = u[:colon] + ":9999" + u[end:]
		}
		cases = append(cases, oracleCase{kind: "signed over another port", url: u, ps: ps, sig: Sign(token, Canonical(other, ps))})
		cases = append(cases, oracleCase{kind: "URL on another port", url: other, ps: ps, sig: sig})
		cases = append(cases, oracleCase{kind: "other token", url: u, ps: ps, sig: Sign(token+"x", Canonical(u, ps))})
		cases = append(cases, oracleCase{kind: "signature character changed", url: u, ps: ps, sig: mutateSig(rng, sig)})
		cases = append(cases, oracleCase{kind: "garbage signature", url: u, ps: ps, sig: pick(rng, "", "WRONG SIGNATURE", sig+"=", sig[:27], " "+sig, strings.ToLower(sig), randText(rng, 30))})
		if len(ps) > 0 {
			i := rng.IntN(len(ps))
			changed := append([]Param(nil), ps...)
			changed[i].Value += pick(rng, " ", "x", "+", "%20", "é")
			cases = append(cases, oracleCase{kind: "value changed", url: u, ps: changed, sig: sig})
			dropped := append(append([]Param(nil), ps[:i]...), ps[i+1:]...)
			cases = append(cases, oracleCase{kind: "param dropped", url: u, ps: dropped, sig: sig})
			renamed := append([]Param(nil), ps...)
			renamed[i].Name = strings.ToUpper(renamed[i].Name) + "_"
			cases = append(cases, oracleCase{kind: "name changed", url: u, ps: renamed, sig: sig})
			var kv strings.Builder // the twilio-go#139 order: key+value strings sorted
			kv.WriteString(u)
			pairs := make([]string, len(ps))
			for j, p := range ps {
				pairs[j] = p.Name + p.Value
			}
			slices.Sort(pairs)
			for _, p := range pairs {
				kv.WriteString(p)
			}
			cases = append(cases, oracleCase{kind: "signed in key+value order", url: u, ps: ps, sig: Sign(token, kv.String())})
		}
		added := append(append([]Param(nil), ps...), Param{Name: "Injected" + randText(rng, 3), Value: randText(rng, 5)})
		if len(toMap(added)) == len(added) {
			cases = append(cases, oracleCase{kind: "param added", url: u, ps: added, sig: sig})
		}
		for _, changed := range []string{
			strings.Replace(u, "https://", "http://", 1),
			strings.Replace(u, "://", "://"+"X", 1),
			u + pick(rng, "x", "/", "&", "%20", "&a=b"),
		} {
			if changed != u && randURLOK(changed) {
				cases = append(cases, oracleCase{kind: "URL changed", url: changed, ps: ps, sig: sig})
			}
		}
		if vals := toValues(ps); len(ps) > 0 {
			body := vals.Encode()
			cases = append(cases, oracleCase{kind: "form body", url: u, body: []byte(body), form: true, sig: sig})
			cases = append(cases, oracleCase{kind: "form body changed", url: u, body: []byte(body + "&Extra=1"), form: true, sig: sig})
		}
		for _, c := range cases {
			agree(t, tally, token, c)
		}
		if t.Failed() {
			break
		}
	}
	checkTally(t, tally, made, drawn)
}

// TestOracleTwilioGoJSON: the same for JSON requests (ValidateBody).
func TestOracleTwilioGoJSON(t *testing.T) {
	rng := oracleRand()
	tally := map[string]*oracleTally{}
	const requests = 1500
	made, drawn := 0, 0
	for made < requests {
		drawn++
		base := randURL(rng)
		if base == "" {
			continue
		}
		made++
		token := pick(rng, testToken, "12345")
		body := []byte(fmt.Sprintf(`{"CallSid":%q,"Text":%q,"n":%d}`, "CA"+randText(rng, 6), randText(rng, 30), rng.IntN(1000)))
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		u := base + sep + "bodySHA256=" + BodyHash(body)
		if !randURLOK(u) {
			continue
		}
		sig := Sign(token, u)
		upper := base + sep + "bodySHA256=" + strings.ToUpper(BodyHash(body))
		other := base + sep + "bodySHA256=" + BodyHash([]byte("{}"))
		cases := []oracleCase{
			{kind: "JSON as signed", url: u, body: body, sig: sig},
			{kind: "JSON body changed", url: u, body: append(append([]byte(nil), body...), ' '), sig: sig},
			{kind: "JSON empty body", url: u, body: []byte{}, sig: sig},
			{kind: "JSON upper-case hash", url: upper, body: body, sig: Sign(token, upper)},
			{kind: "JSON hash of another body, signed", url: other, body: body, sig: Sign(token, other)},
			{kind: "JSON signature over the base URL", url: u, body: body, sig: Sign(token, base)},
			{kind: "JSON other token", url: u, body: body, sig: Sign(token+"x", u)},
			{kind: "JSON signature character changed", url: u, body: body, sig: mutateSig(rng, sig)},
		}
		for _, variant := range URLVariants(u)[1:] {
			cases = append(cases, oracleCase{kind: "JSON signed over the port variant", url: u, body: body, sig: Sign(token, variant)})
		}
		for _, c := range cases {
			agree(t, tally, token, c)
		}
		if t.Failed() {
			break
		}
	}
	checkTally(t, tally, made, drawn)
}

func randURLOK(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.String() == s
}

func toValues(ps []Param) url.Values {
	v := url.Values{}
	for _, p := range ps {
		v.Add(p.Name, p.Value)
	}
	return v
}

// mutateSig replaces one base64 character of sig by another.
func mutateSig(rng *rand.Rand, sig string) string {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := rng.IntN(len(sig) - 1)
	c := b64[rng.IntN(len(b64))]
	for c == sig[i] {
		c = b64[rng.IntN(len(b64))]
	}
	return sig[:i] + string(c) + sig[i+1:]
}

// checkTally logs what was compared and fails if the generator stopped
// producing some class of case (a test that compares nothing passes).
func checkTally(t *testing.T, tally map[string]*oracleTally, made, drawn int) {
	t.Helper()
	if made*10 < drawn*7 {
		t.Errorf("only %d of %d generated URLs round-trip through net/url: the generator drifted", made, drawn)
	}
	total := 0
	for kind, k := range tally {
		total += k.valid + k.invalid
		t.Logf("%-36s %5d valid %5d invalid", kind, k.valid, k.invalid)
	}
	t.Logf("%d requests, %d cases: voicegate and twilio-go agree", made, total)
	// Each kind must have exercised the verdict it exists for.
	valid := map[string]bool{"as signed": true, "signed over the port variant": true, "URL on another port": true,
		"form body": true, "JSON as signed": true, "JSON signed over the port variant": true}
	for kind, k := range tally {
		if valid[kind] && k.valid == 0 {
			t.Errorf("%s: no valid case", kind)
		}
		if !valid[kind] && k.invalid == 0 {
			t.Errorf("%s: no invalid case", kind)
		}
	}
}
