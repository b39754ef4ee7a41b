package pii

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRedact: each kind in its usual forms, and the tricky negatives next
// to them.
func TestRedact(t *testing.T) {
	cases := []struct{ name, in, want string }{
		// Phones.
		{"e164", "call +15551234567 now", "call [PHONE] now"},
		{"e164 grouped", "+1 (555) 123-4567, +44 20 7946 0958, +49 30 123456", "[PHONE], [PHONE], [PHONE]"},
		{"e164 trunk in parens", "Paris: +33 (0)1 42 68 53 00.", "Paris: [PHONE]."},
		{"nanp", "(555) 123-4567 or 555-123-4567 or 555.123.4567", "[PHONE] or [PHONE] or [PHONE]"},
		{"nanp leading 1", "1-800-555-0199 and 1 (855) 555-0163", "[PHONE] and [PHONE]"},
		{"uk national", "020 7946 0958, 07700 900123, (0161) 496 0000", "[PHONE], [PHONE], [PHONE]"},
		{"german national", "030 123456 or 030/1234567", "[PHONE] or [PHONE]"},
		{"french pairs", "01 42 68 53 00", "[PHONE]"},
		{"bare digits need context", "my number is 5551234567; order 5551234567", "my number is [PHONE]; order 5551234567"},
		{"local number in context", "call me on 555-0123", "call me on [PHONE]"},
		{"camelCase key", `{"callbackNumber":"5559871234","orderNumber":"5559871234"}`, `{"callbackNumber":"[PHONE]","orderNumber":"5559871234"}`},
		{"order number shaped like a phone", "Order #482-193-7750 shipped", "Order #482-193-7750 shipped"},
		{"spoken", "reach me at four one five five five five zero one nine nine", "reach me at [PHONE]"},
		// E-mail.
		{"email", "mail jane.doe+x@mail.example.co.uk.", "mail [EMAIL]."},
		{"email in brackets", "<a.b@c.io>", "<[EMAIL]>"},
		{"spoken email", "it's jane dot doe at gmail dot com", "it's [EMAIL]"},
		{"not an email", "email me at home dot com, see @handle, user@localhost", "email me at home dot com, see @handle, user@localhost"},
		// SSN.
		{"ssn", "SSN 123-45-6789", "SSN [SSN]"},
		{"ssn spaced in context", "social security number 123 45 6789", "social security number [SSN]"},
		{"ssn spaced without context", "codes 123 45 6789", "codes 123 45 6789"},
		{"ssn bare in context", `"ssn":"123456789"`, `"ssn":"[SSN]"`},
		{"ssn spaced, word after", "also my wife's 455 21 3391 (social security)", "also my wife's [SSN] (social security)"},
		{"ssn bare, word after", "it's 455213391, that's my SSN", "it's [SSN], that's my SSN"},
		{"ssn, possessive before the word after", "read out 455 21 3391 as the customer's social security number", "read out [SSN] as the customer's social security number"},
		{"ssn, word after in JSON", `{"value": "455 21 3391", "field": "social_security_number"}`, `{"value": "[SSN]", "field": "social_security_number"}`},
		{"ssn, word after is the next number's", "ref 455 21 3391, SSN 123-45-6789", "ref 455 21 3391, SSN [SSN]"},
		{"ssn, word after in the next sentence", "code 455 21 3391. Social security is separate", "code 455 21 3391. Social security is separate"},
		{"ssn, another keyword between", "455 21 3391 is the order for the SSN check", "455 21 3391 is the order for the SSN check"},
		{"ssn, order before, word after", "order no. 455213391 (SSN pending)", "order no. 455213391 (SSN pending)"},
		{"social insurance is not social security", "624046728 is my social insurance number", "624046728 is my social insurance number"},
		{"ssn spoken, word after", "five two nine four four one zero eight three is my social", "[SSN] is my social"},
		{"ssn invalid areas", "000-12-3456 666-12-3456 912-70-1234 123-00-4567 123-45-0000", "000-12-3456 666-12-3456 912-70-1234 123-00-4567 123-45-0000"},
		{"ssn inside longer", "policy 770-11-22334, ref 2024-123-45-6789", "policy 770-11-22334, ref 2024-123-45-6789"},
		// Cards.
		{"card", "card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"},
		{"card dashes and amex", "4111-1111-1111-1111 and 3782 822463 10005", "[CARD] and [CARD]"},
		{"card together", "5555555555554444", "[CARD]"},
		{"luhn invalid", "ref 4111 1111 1111 1112", "ref 4111 1111 1111 1112"},
		{"no issuer", "ref 1234 5678 9012 3452", "ref 1234 5678 9012 3452"},
		{"longer run not a card", "9400 1000 0000 0000 0000 00", "9400 1000 0000 0000 0000 00"},
		{"masked", "card **** **** **** 4242", "card **** **** **** 4242"},
		// Dates of birth.
		{"dob", "DOB: 03/14/1985, visit 04/02/2026", "DOB: [DOB], visit 04/02/2026"},
		{"dob words", "born on March 14th, 1985 in Ohio", "born on [DOB] in Ohio"},
		{"dob day first", "date of birth 14 March 1985", "date of birth [DOB]"},
		{"dob after", "1985-03-14 (DOB)", "[DOB] (DOB)"},
		{"dob abbreviation", "b. 1948-10-21, d. 2019-04-02", "b. [DOB], d. 2019-04-02"},
		{"dob question and answer", "Date of birth? 03/14/1985", "Date of birth? [DOB]"},
		{"dob in words", "born on the twenty-third of May, nineteen eighty-five", "born on the [DOB]"},
		{"dob in words, month first", "DOB July the fourth, 1976", "DOB [DOB]"},
		{"date in words, not a birth", "the meeting is on the fifth of June", "the meeting is on the fifth of June"},
		{"dob compact", `"dob":"19850314"`, `"dob":"[DOB]"`},
		{"date without birth word", "appointment on 03/14/2026 at 10:30", "appointment on 03/14/2026 at 10:30"},
		{"birth word belongs to the year", "born in 1998, public on 08/19/2004", "born in 1998, public on 08/19/2004"},
		{"birthday party", "birthday party on 12/14", "birthday party on 12/14"},
		{"birth word belongs to the next date", "on 10/15, DOB is 10/15/1956", "on 10/15, DOB is [DOB]"},
		// National ids shaped like phone numbers.
		{"nhs number", "NHS number 943 476 5919; GP 020 7946 0213", "NHS number 943 476 5919; GP [PHONE]"},
		{"nhs number asked", "My NHS number? It's 943 476 5919.", "My NHS number? It's 943 476 5919."},
		{"canadian sin", "SIN 046 454 286, call 416-555-0163", "SIN 046 454 286, call [PHONE]"},
		{"medicare", "Medicare no. 0412 345 678 1", "Medicare no. 0412 345 678 1"},
		// Dates of birth in a list.
		{"dob list", "DOB for the primary is 1971-10-05 and the dependant 2009-06-17.", "DOB for the primary is [DOB] and the dependant [DOB]."},
		{"dob list, people", "Birthdays: Mom 4/12, Dad 9/30.", "Birthdays: Mom [DOB], Dad [DOB]."},
		{"dob corrected", "Date of birth corrected from 05/06/1971 to 06/05/1971.", "Date of birth corrected from [DOB] to [DOB]."},
		{"dob list ends at another word", "DOB 03/14/1985 and moved here on 06/01/2010", "DOB [DOB] and moved here on 06/01/2010"},
		{"and alone makes no list", "born 14 March 1985, and 03/20/2026 suits me", "born [DOB], and 03/20/2026 suits me"},
		{"dob list ends at a sentence", "DOB 03/14/1985. And 06/01/2010 is the start date.", "DOB [DOB]. And 06/01/2010 is the start date."},
		// Negatives.
		{"times and prices", "at 10:30, $1,234.56, 12.5%, 94103-1234", "at 10:30, $1,234.56, 12.5%, 94103-1234"},
		{"identifiers", "1Z999AA10123456784 INV-2024-000123 v1.2.3 192.168.1.20 UA 1234", "1Z999AA10123456784 INV-2024-000123 v1.2.3 192.168.1.20 UA 1234"},
		{"isbn", "ISBN 978-0-306-40615-7", "ISBN 978-0-306-40615-7"},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q\nfindings %v", tc.in, got, tc.want, Find(tc.in))
			}
		})
	}
}

// TestFindOffsets: offsets are bytes of the original text, also after
// multi-byte characters.
func TestFindOffsets(t *testing.T) {
	in := "Zoë — appelez le +33 6 12 34 56 78 ou zoë@example.fr"
	got := Find(in)
	want := []Finding{{Phone, strings.Index(in, "+33"), strings.Index(in, " ou")}, {Email, strings.Index(in, "zoë@"), len(in)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Find(%q) = %v, want %v", in, got, want)
	}
}

// TestNoAllocation: clean text, the common case, costs no allocation.
func TestNoAllocation(t *testing.T) {
	clean := "AI: Your appointment is on 03/10/2026 at 2:15 PM in room 214; the copay is $35.00."
	if n := testing.AllocsPerRun(100, func() { Redact(clean) }); n != 0 {
		t.Errorf("Redact on clean text: %v allocations, want 0", n)
	}
}

// checkRedaction holds for any text: findings sorted, inside the text and
// not overlapping; the output as long as the placeholders make it; no digit
// of a finding survives; redacting again changes nothing.
func checkRedaction(t *testing.T, in string) {
	t.Helper()
	fs := Find(in)
	want := len(in)
	prev := 0
	for _, f := range fs {
		if f.Start < prev || f.End <= f.Start || f.End > len(in) {
			t.Fatalf("Find(%q): bad or overlapping finding %v in %v", in, f, fs)
		}
		prev = f.End
		want += len(f.Kind.Placeholder()) - (f.End - f.Start)
		if strings.ContainsAny(f.Kind.Placeholder(), "0123456789@") {
			t.Fatalf("placeholder %q contains a digit or '@'", f.Kind.Placeholder())
		}
	}
	out := Redact(in)
	if len(out) != want {
		t.Fatalf("Redact(%q) = %q: %d bytes, want %d", in, out, len(out), want)
	}
	if utf8.ValidString(in) && !utf8.ValidString(out) {
		t.Fatalf("Redact(%q) = %q: splits a character", in, out)
	}
	if again := Redact(out); again != out {
		t.Fatalf("Redact is not idempotent:\n in    %q\n once  %q\n twice %q", in, out, again)
	}
}

// FuzzRedact: no panic, the output exactly as long as needed, redacting
// twice changes nothing.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"call +1 (555) 123-4567 or 020 7946 0958", "SSN 123-45-6789 DOB 03/14/1985", "card 4111 1111 1111 1111 12/27",
		"jane dot doe at gmail dot com", "a@b.co", "born on March 14th, 1985", "DOB 01/02/1980 03/04/1990",
		"my number is 5551234567", "five five five double two three four five six seven", "[PHONE] 1234567",
		"a@b.co dot x at y dot com", "0 At 0 dot CA dot 0 At 0 dot CA", "(0)20 ((555)) +(44) 1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6-7-8-9", "x@y.z@w.com", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkRedaction(t, in)
	})
}

// TestRedactProperties runs the fuzz properties over the corpora.
func TestRedactProperties(t *testing.T) {
	for _, name := range []string{corpusFile, round1File, heldoutFile, heldout2File} {
		texts, _ := readCorpus(t, name)
		for _, text := range texts {
			checkRedaction(t, text)
		}
	}
}

var sink string

// BenchmarkRedact: a clean 200-byte transcript line (the common case) and
// one with four findings.
func BenchmarkRedact(b *testing.B) {
	lines := map[string]string{
		"clean":    "AI: Thanks, Maria. I have you down for Tuesday, March 10 at 2:15 PM with Dr. Patel in room 214; please arrive ten minutes early and bring your insurance card. The copay is $35.00.",
		"findings": "User: Sure, my date of birth is 04/17/1982, call me back at (415) 555-0134 or email maria.gonzalez61@gmail.com, and the card is 4111 1111 1111 1111, expiring 08/28, thanks.",
	}
	for _, name := range []string{"clean", "findings"} {
		line := lines[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				sink = Redact(line)
			}
		})
	}
}
