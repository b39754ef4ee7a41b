package library

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestSplitMarkdown(t *testing.T) {
	doc := "---\ntitle: secret front matter\n---\n# Clinic\n\nIntro.\n\n## Refunds\n\nOne.\n\nTwo.\n\n```\n# not a heading\n\ncode\n```\n\n### Cards\nThree.\n\n## Parking ##\n\nFour.\n#hashtag is text\n"
	got, err := Split([]byte(doc), Markdown)
	if err != nil {
		t.Fatal(err)
	}
	want := []Section{
		{"Clinic", "Intro."},
		{"Clinic › Refunds", "One.\n\nTwo.\n\n```\n# not a heading\n\ncode\n```"},
		{"Clinic › Refunds › Cards", "Three."},
		{"Clinic › Parking", "Four.\n#hashtag is text"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("section %d: %q, want %q", i, got[i], want[i])
		}
	}
	if got[1].Content() != "Clinic › Refunds\nOne.\n\nTwo.\n\n```\n# not a heading\n\ncode\n```" {
		t.Fatalf("content %q", got[1].Content())
	}
}

func TestSplitSizes(t *testing.T) {
	// Paragraphs gather up to TargetBytes; one longer than MaxBytes is cut
	// at sentence ends; nothing is lost.
	var b strings.Builder
	for i := range 30 {
		b.WriteString(strings.Repeat("word ", 30+i))
		b.WriteString("end.\n\n")
	}
	long := strings.Repeat("This is a sentence of a long paragraph. ", 100)
	b.WriteString(long)
	b.WriteString("\n\n" + strings.Repeat("x", 4000)) // no space at all
	got, err := Split([]byte(b.String()), Text)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range got {
		if len(s.Text) > MaxBytes {
			t.Fatalf("a passage of %d bytes", len(s.Text))
		}
		total += visible(s.Text)
	}
	if want := visible(b.String()); total != want {
		t.Fatalf("%d characters kept of %d", total, want)
	}
	for _, s := range got {
		if strings.Contains(s.Text, "sentence") && !strings.HasSuffix(s.Text, ".") {
			t.Fatalf("cut inside a sentence: %q", s.Text[len(s.Text)-20:])
		}
	}
}

func TestSplitRefusals(t *testing.T) {
	for name, doc := range map[string][]byte{
		"not utf-8": {0xff, 0xfe, 'a'},
		"binary":    []byte("text\x00more"),
		"too large": make([]byte, MaxDocumentBytes+1),
	} {
		if _, err := Split(doc, Text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, name := range []string{"a.pdf", "a.docx", "noext"} {
		if _, err := FormatOf(name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := FormatOf("a.pdf"); err == nil || !strings.Contains(err.Error(), "pdftotext") {
		t.Errorf("pdf: %v", err)
	}
	for name, want := range map[string]Format{"A.MD": Markdown, "b.markdown": Markdown, "c.txt": Text} {
		if f, err := FormatOf(name); f != want || err != nil {
			t.Errorf("%s: %v %v", name, f, err)
		}
	}
}

func TestWords(t *testing.T) {
	for _, c := range []struct{ lang, in, want string }{
		{"en", "Cancelled appointments, cancellation; CANCELLING!", "cancel appoint cancel cancel"},
		{"en", "The café's menu — don't worry", "cafe menu dont worri"},
		{"en", "I can't find my card at 8:00 on 2 May", "cant find card 8 00 2 may"},
		{"en", "a b c x", ""},
		{"fr", "Les rendez-vous annulés", "le rend annul"},
		{"es", "Las citas canceladas", "cit cancel"},
		{"xx", "Refunds", "refund"}, // an unknown language reads as English
		{"en", strings.Repeat("z", maxWordBytes+1) + " ok", "ok"},
	} {
		if got := strings.Join(Words(c.lang, c.in), " "); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.lang, c.in, got, c.want)
		}
	}
	if err := CheckLanguage("de"); err == nil {
		t.Error("de accepted")
	}
}

func TestTerms(t *testing.T) {
	a := NewTerms([]byte("k1")).Of([]string{"refund", "card", "refund"})
	b := NewTerms([]byte("k2")).Of([]string{"refund"})
	if a[0] != a[2] || a[0] == a[1] || a[0] == b[0] || len(a[0]) != 16 || strings.Trim(a[0], termLetters) != "" {
		t.Fatalf("terms %q %q", a, b)
	}
	if d := Distinct(a); len(d) != 2 {
		t.Fatalf("distinct %q", d)
	}
}

// visible counts the characters of s that are not white space.
func visible(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// FuzzSplit: any document splits without panicking, each passage within
// MaxBytes and valid UTF-8, and every word of a text document is kept.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("# A\n\nb\n\n## C ##\n```\nx\n```\n"), true)
	f.Add([]byte(strings.Repeat("é. ", 900)), false)
	f.Add([]byte("---\nx\n"), true)
	f.Fuzz(func(t *testing.T, doc []byte, md bool) {
		format := Text
		if md {
			format = Markdown
		}
		got, err := Split(doc, format)
		if err != nil {
			return
		}
		kept := 0
		for _, s := range got {
			if len(s.Text) > MaxBytes || !utf8.ValidString(s.Content()) || strings.TrimSpace(s.Text) == "" {
				t.Fatalf("passage %q", s.Text)
			}
			kept += visible(s.Text)
		}
		if !md {
			if want := visible(strings.TrimPrefix(string(doc), "\ufeff")); kept != want {
				t.Fatalf("%d characters kept of %d", kept, want)
			}
		}
		Words("en", string(doc))
	})
}

// TestReviewSplitHeadingBounded: every passage carries its heading path;
// a very long heading must not be copied into each of thousands of
// passages (an 8 MB document would make gigabytes of passages).
func TestReviewSplitHeadingBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("# " + strings.Repeat("long heading ", 20_000) + "\n\n")
	for range 2000 {
		b.WriteString(strings.Repeat("word ", 100) + "end.\n\n")
	}
	got, err := Split([]byte(b.String()), Markdown)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range got {
		total += len(s.Content())
	}
	if total > 2*b.Len() {
		t.Fatalf("%d passages of %d bytes together, from a document of %d", len(got), total, b.Len())
	}
}

// TestReviewSplitManyHeadings: short sections under a long heading path
// are bounded too (refused past MaxPassagesBytes, never gigabytes).
func TestReviewSplitManyHeadings(t *testing.T) {
	var b strings.Builder
	for l := 1; l <= 5; l++ {
		b.WriteString(strings.Repeat("#", l) + " " + strings.Repeat("x", 200) + "\n")
	}
	for b.Len() < MaxDocumentBytes-20 {
		b.WriteString("###### a\nb\n")
	}
	got, err := Split([]byte(b.String()), Markdown)
	total := 0
	for _, s := range got {
		total += len(s.Content())
		if len(s.Heading) > MaxHeadingBytes {
			t.Fatalf("heading of %d bytes", len(s.Heading))
		}
	}
	if err == nil && total > MaxPassagesBytes {
		t.Fatalf("%d bytes of passages from %d", total, b.Len())
	}
	// A heading path of usual length is kept whole.
	got, err = Split([]byte("# Clinic\n## Billing\n### Refunds\nText."), Markdown)
	if err != nil || len(got) != 1 || got[0].Heading != "Clinic › Billing › Refunds" {
		t.Fatalf("%q %v", got, err)
	}
}

// TestReviewWordsNormalized: text in decomposed form (NFD: macOS, some
// PDF converters) has the same words as composed text (NFC: the
// transcripts): the stemmers and stop-word lists read composed letters,
// so "créées" stemmed "cree" from one and "cre" from the other.
func TestReviewWordsNormalized(t *testing.T) {
	for _, c := range []struct{ lang, s string }{
		{"fr", "opérations créées élégantes réservée médecin"},
		{"es", "canción médicos están reservó"},
		{"ru", "ёлка йогурт"},
		{"sv", "läkare öppettider"},
	} {
		a := Words(c.lang, c.s)
		b := Words(c.lang, norm.NFD.String(c.s))
		if strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("%s: composed %v, decomposed %v", c.lang, a, b)
		}
	}
}
