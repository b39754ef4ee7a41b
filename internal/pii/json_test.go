package pii

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestRedactJSON(t *testing.T) {
	in := `{"call":{"customer":{"number":"+14155550123"}},"args":{"dateOfBirth":"1985-03-12","appointment":"2026-03-12",` +
		`"card":4111111111111111,"email":"jane.doe@example.com","orderId":12345678,"cost":0.42,"note":"call me at 415-555-0199",` +
		`"list":["ssn 123-45-6789", 7]},"transcript":"AI: hi\nUser: my date of birth is March 3rd 1990"}`
	out := string(RedactJSON([]byte(in)))
	for _, leak := range []string{"5550123", "1985-03-12", "4111111111111111", "jane.doe", "555-0199", "123-45-6789", "March 3rd 1990"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q left in %s", leak, out)
		}
	}
	for _, kept := range []string{`"appointment":"2026-03-12"`, `"orderId":12345678`, `"cost":0.42`, `"card":"[CARD]"`, `"dateOfBirth":"[DOB]"`, `7]`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q missing from %s", kept, out)
		}
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("not JSON: %s", out)
	}
	// Member names too (two that redact alike keep one of them).
	keys := string(RedactJSON([]byte(`{"+14155550123":"vip","jane.doe@example.com":{"note":"x"},"plain":1}`)))
	if strings.Contains(keys, "5550123") || strings.Contains(keys, "jane.doe") || !strings.Contains(keys, `"[PHONE]":"vip"`) || !strings.Contains(keys, `"plain":1`) {
		t.Errorf("member names: %s", keys)
	}
	// Not JSON: redacted as text.
	if got := string(RedactJSON([]byte(`{"a": "+14155550123"`))); strings.Contains(got, "5550123") {
		t.Errorf("broken JSON kept the number: %s", got)
	}
}

// TestRedactJSONTurns: the turns of a transcript in an array carry a
// question to its answer; separate values do not.
func TestRedactJSONTurns(t *testing.T) {
	in := `{"messages":[{"role":"bot","message":"What's your date of birth?"},{"role":"user","message":"March 3rd 1990"},` +
		`{"role":"bot","message":"And your social security number, please?"},{"role":"user","message":"521 60 7784"},` +
		`{"role":"bot","message":"When would you like to come in?"},{"role":"user","message":"04/02/2026"}],` +
		`"lines":["AI: Your date of birth, please.","User: 14.03.1985"],"question":"date of birth?","other":"04/02/2026"}`
	out := string(RedactJSON([]byte(in)))
	for _, leak := range []string{"March 3rd 1990", "521 60 7784", "14.03.1985"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q left in %s", leak, out)
		}
	}
	if strings.Count(out, "04/02/2026") != 2 {
		t.Errorf("an appointment date was redacted: %s", out)
	}
}

func FuzzRedactJSON(f *testing.F) {
	f.Add(`{"a":"+14155550123","b":[1,"x"]}`)
	f.Add(`[4111111111111111]`)
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactJSON([]byte(s))
		if json.Valid([]byte(s)) && !json.Valid(out) {
			t.Fatalf("valid JSON redacted into invalid JSON: %q -> %q", s, out)
		}
	})
}

// BenchmarkRedactJSON: the redacted copy of a real end-of-call report
// (records.redaction copy or only), the cost each report pays on top of
// its seal and insert.
func BenchmarkRedactJSON(b *testing.B) {
	doc, err := os.ReadFile("../../testdata/vapi/end-of-call-report-current.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		RedactJSON(doc)
	}
}
