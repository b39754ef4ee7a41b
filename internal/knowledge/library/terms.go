package library

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/kljensen/snowball/english"
	"github.com/kljensen/snowball/french"
	"github.com/kljensen/snowball/norwegian"
	"github.com/kljensen/snowball/russian"
	"github.com/kljensen/snowball/spanish"
	"github.com/kljensen/snowball/swedish"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// A language stems words and knows its stop words (Snowball's stemmers).
type language struct {
	stem func(string, bool) string
	stop func(string) bool
}

// Languages are the languages a knowledge base's documents may be in,
// by ISO 639-1 code.
var languages = map[string]language{
	"en": {english.Stem, english.IsStopWord},
	"es": {spanish.Stem, spanish.IsStopWord},
	"fr": {french.Stem, french.IsStopWord},
	"no": {norwegian.Stem, norwegian.IsStopWord},
	"ru": {russian.Stem, russian.IsStopWord},
	"sv": {swedish.Stem, swedish.IsStopWord},
}

// Languages lists the language codes a knowledge base may use.
func Languages() []string {
	out := make([]string, 0, len(languages))
	for k := range languages {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckLanguage says whether code is a language of Languages.
func CheckLanguage(code string) error {
	if _, ok := languages[code]; !ok {
		return fmt.Errorf("language %q is not one of %s", code, strings.Join(Languages(), ", "))
	}
	return nil
}

// maxWordBytes is the longest word indexed: longer runs are not words a
// caller says (hashes, base64, URLs' paths).
const maxWordBytes = 40

// Words are the index words of text in language lang, in order: composed
// (NFC), lower case, stop words dropped, stemmed, then stripped of
// diacritics (after stemming: the French and Spanish stemmers read
// accents). Apostrophes inside a word join it ("don't" is "dont"); a
// possessive 's is dropped.
func Words(lang, text string) []string {
	l, ok := languages[lang]
	if !ok {
		l = languages["en"]
	}
	// Composed first: the stemmers and stop-word lists read "é", not "e"
	// and a combining accent (decomposed text: macOS, PDF converters).
	text = norm.NFC.String(text)
	var out []string
	var w strings.Builder
	flush := func() {
		s := w.String()
		w.Reset()
		s = strings.TrimSuffix(s, "'s")
		s = strings.ReplaceAll(s, "'", "")
		if s == "" || len(s) > maxWordBytes {
			return
		}
		if l.stop(s) {
			return
		}
		s = fold(l.stem(s, false))
		if len([]rune(s)) < 2 && !isDigits(s) {
			return
		}
		out = append(out, s)
	}
	prev := rune(0)
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			w.WriteRune(unicode.ToLower(r))
		case (r == '\'' || r == '’' || r == 'ʼ') && w.Len() > 0 && (unicode.IsLetter(prev)):
			w.WriteByte('\'')
		default:
			if w.Len() > 0 {
				flush()
			}
		}
		prev = r
	}
	if w.Len() > 0 {
		flush()
	}
	return out
}

func isDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return s != ""
}

// fold strips diacritics: "café" is "cafe".
func fold(s string) string {
	for _, r := range s {
		if r >= 0x80 {
			t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
			out, _, err := transform.String(t, s)
			if err != nil {
				return s
			}
			return out
		}
	}
	return s
}

// termLetters spell a term: 16 letters, each a nibble of its keyed hash.
// Letters only, so that both SQLite's and PostgreSQL's full-text parsers
// read a term as one word, whatever it would look like in hex (1e5...).
const termLetters = "abcdefghijklmnop"

// termBytes is how much of a word's keyed hash makes its term: 64 bits,
// no collision among the words of any knowledge base.
const termBytes = 8

// Terms maps words to what the index holds: each word's keyed hash
// (HMAC-SHA-256 under the index key), so that the database keeps no word
// of a document in clear — only which passages share a word, and how
// often.
type Terms struct {
	key []byte
}

// NewTerms returns the terms of index key key.
func NewTerms(key []byte) Terms { return Terms{key: key} }

// Of returns the term of each word, in order.
func (t Terms) Of(words []string) []string {
	out := make([]string, len(words))
	m := hmac.New(sha256.New, t.key)
	var sum [sha256.Size]byte
	var b [termBytes * 2]byte
	for i, w := range words {
		m.Reset()
		m.Write([]byte(w))
		h := m.Sum(sum[:0])
		for j := range termBytes {
			b[2*j] = termLetters[h[j]>>4]
			b[2*j+1] = termLetters[h[j]&15]
		}
		out[i] = string(b[:])
	}
	return out
}

// TermsOf is the terms of words under the index key derived from lookup
// key, as a library of that key indexes them (for tests and tools that
// read the index).
func TermsOf(lookupKey []byte, words []string) []string {
	return NewTerms(derive(lookupKey, indexLabel)).Of(words)
}

// Distinct returns terms without repeats, in first-seen order.
func Distinct(terms []string) []string {
	seen := make(map[string]bool, len(terms))
	out := terms[:0:0]
	for _, t := range terms {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
