// Package pii finds personal data in free text — phone numbers, e-mail
// addresses, US social security numbers, payment card numbers and dates of
// birth — and redacts it, replacing each finding with a placeholder that
// names its kind ([PHONE], [EMAIL], [SSN], [CARD], [DOB]).
//
// Threat: transcripts, tool arguments and log lines carry what callers say.
// A log line or an analytics copy is read by more people, and kept longer,
// than the encrypted call record; what it must not carry is what identifies
// or defrauds the caller. The redactor is applied to such text before it
// leaves the protected record.
//
// Redaction is heuristic. It is built from the shape of each kind, not from
// a list of examples: a phone number is a run of digit groups in one of the
// numbering plans' written forms; a card number passes the Luhn check and
// starts with an issuer prefix valid for its length; an SSN has a valid
// area, group and serial; a date is a date of birth only with a birth word
// ("born", "DOB", "date of birth", "birthday", "b.") next to it, in a list
// of dates of birth ("DOB 1971-10-05 and the dependant 2009-06-17"), or as
// the answer to a question for one on the line before ("AI: What's your
// date of birth?" then "User: 3/15"; see Scanner). Forms that are
// ambiguous on their own — ten bare digits, "123 45 6789", "555-1234" —
// count only next to a word that says what they are ("call", "phone",
// "SSN", …; for an SSN also after it: "455 21 3391 (social security)",
// or on the line after a question for one) and never next to one that
// says they are something else ("order", "invoice", "tracking", "NHS
// number", "SIN", …). Speech-to-text output is read too:
// digits said one by one ("five five five, oh one two three") and dates in
// words ("the fifth of June, nineteen eighty"). The corpora in testdata/pii
// and internal/pii/testdata measure precision and recall per kind (see
// corpus_test.go).
//
// What it does not find: a date of birth whose birth word is further than
// the line before (a column header two rows up), or in another language; a
// year or month of birth alone; a social-security word after the number
// but past the end of its sentence ("529 44 1083 right? my SSN"); bare
// digits without grouping or a word saying they are a phone number;
// numbers said as "five hundred fifty-five"; addresses and names. It
// finds some numbers of the same shape that are not personal data (a
// Luhn-valid reference with a card prefix, a 3-3-4 grouped reference with
// no word before it, the first date on the line after a question for a
// date of birth when the answer is another date).
//
// A call costs microseconds and allocates nothing when nothing is found.
package pii

import "strings"

// Kind is the kind of a finding; its value is what the placeholder names.
type Kind string

// The kinds of personal data found.
const (
	Phone Kind = "PHONE" // a phone number, international or national
	Email Kind = "EMAIL" // an e-mail address, written or spelled out ("jane at example dot com")
	SSN   Kind = "SSN"   // a US social security number
	Card  Kind = "CARD"  // a payment card number (Luhn-checked)
	DOB   Kind = "DOB"   // a date next to a birth word
)

// Placeholder returns the text that replaces a finding of kind k, such as
// "[PHONE]". Placeholders contain no digits and no '@', so redacted text
// redacts to itself.
func (k Kind) Placeholder() string {
	switch k {
	case Phone:
		return "[PHONE]"
	case Email:
		return "[EMAIL]"
	case SSN:
		return "[SSN]"
	case Card:
		return "[CARD]"
	case DOB:
		return "[DOB]"
	}
	return "[" + string(k) + "]"
}

// Finding is one piece of personal data: text[Start:End] (byte offsets).
type Finding struct {
	Kind       Kind
	Start, End int
}

// Find returns the personal data in text, sorted by position and not
// overlapping; nil when there is none.
func Find(text string) []Finding { return AppendFind(nil, text) }

// AppendFind appends the findings in text to dst and returns the extended
// slice, so that a caller can reuse one buffer.
func AppendFind(dst []Finding, text string) []Finding { return appendFind(dst, text, nil) }

// appendFind is AppendFind with the context of z's previous text (z may
// be nil).
func appendFind(dst []Finding, text string, z *Scanner) []Finding {
	base := len(dst)
	sc := scanner{s: text, out: dst, base: base, z: z}
	sc.findEmails()
	sc.nEmail = len(sc.out) - base
	sc.scan()
	sc.findSpoken()
	sortFindings(sc.out[base:]) // three sorted passes: nearly sorted
	return sc.out
}

// Redact returns text with each finding replaced by its kind's
// placeholder. Text without findings is returned as is, without copying.
func Redact(text string) string {
	return Replace(text, Find(text))
}

// Replace returns text with each of findings (sorted, not overlapping, as
// Find returns them) replaced by its kind's placeholder.
func Replace(text string, findings []Finding) string {
	if len(findings) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8*len(findings))
	prev := 0
	for _, f := range findings {
		b.WriteString(text[prev:f.Start])
		b.WriteString(f.Kind.Placeholder())
		prev = f.End
	}
	b.WriteString(text[prev:])
	return b.String()
}

// add appends a finding. The first one makes room for a few: a line with
// personal data usually has more than one.
func (sc *scanner) add(k Kind, lo, hi int) {
	if cap(sc.out) == len(sc.out) && len(sc.out) == sc.base {
		out := make([]Finding, len(sc.out), len(sc.out)+4)
		copy(out, sc.out)
		sc.out = out
	}
	sc.out = append(sc.out, Finding{Kind: k, Start: lo, End: hi})
}

// sortFindings sorts findings by start (insertion sort: they are few, and
// nearly sorted).
func sortFindings(fs []Finding) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Start < fs[j-1].Start; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}
