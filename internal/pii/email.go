package pii

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits from RFC 5321: a local part of at most 64 bytes, a domain of at
// most 255. They also bound the scans around each '@'.
const (
	maxLocal  = 64
	maxDomain = 255
)

// findEmails appends the e-mail addresses in sc.s, written ("jane@x.com")
// or spelled out as a voice transcript has them ("jane dot doe at gmail
// dot com"), sorted and not overlapping.
func (sc *scanner) findEmails() {
	s := sc.s
	floor := 0 // a local part never reaches back into the previous address
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '@')
		if k < 0 {
			break
		}
		at := i + k
		i = at + 1
		lo, hi, ok := emailAround(s, at, floor)
		if !ok {
			continue
		}
		sc.add(Email, lo, hi)
		floor, i = hi, hi
	}
	if strings.Contains(s, " dot ") {
		sc.findSpokenEmails()
	}
}

// emailAround returns the address around the '@' at s[at], its local part
// starting no earlier than floor.
func emailAround(s string, at, floor int) (lo, hi int, ok bool) {
	lo = at
	for lo > floor && at-lo < maxLocal {
		n := localBefore(s, lo)
		if n == 0 || lo-n < floor {
			break
		}
		lo -= n
	}
	if localBefore(s, lo) > 0 || lo > 0 && s[lo-1] == ']' && endsWithPlaceholder(s[:lo]) {
		return 0, 0, false // too long, or run into the previous address (or its placeholder)
	}
	for lo < at && (s[lo] == '.' || s[lo] == '-' || s[lo] == '\'') { // "...jane@", "'jane@": punctuation
		lo++
	}
	if lo == at || s[at-1] == '.' {
		return 0, 0, false
	}
	hi, ok = domainAt(s, at+1)
	return lo, hi, ok
}

// domainAt returns the end of the domain name starting at s[i]: labels of
// letters, digits and hyphens separated by single dots, the last one (the
// top-level domain) of two or more letters.
func domainAt(s string, i int) (end int, ok bool) {
	lastDot, labelStart := -1, i
	j := i
	for ; j < len(s) && j-i < maxDomain; j++ {
		c := s[j]
		if c >= utf8.RuneSelf { // an internationalised domain name: "café.fr"
			r, n := utf8.DecodeRuneInString(s[j:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			j += n - 1
			continue
		}
		if c == '.' {
			if j == labelStart || s[j-1] == '-' || j+1 >= len(s) || !isAlnum(s[j+1]) {
				break // an empty or hyphen-ended label, or a full stop
			}
			lastDot, labelStart = j, j+1
			continue
		}
		if !isAlnum(c) && c != '-' {
			break
		}
		if c == '-' && j == labelStart {
			break
		}
	}
	end = j
	for end > i && s[end-1] == '-' {
		end--
	}
	if lastDot < 0 || lastDot < i+1 || end-lastDot-1 < 2 {
		return 0, false
	}
	for k := lastDot + 1; k < end; k++ {
		if !isLetter(s[k]) {
			return 0, false
		}
	}
	if end < len(s) && (isAlnum(s[end]) || s[end] == '_' || s[end] == '@') {
		return 0, false
	}
	// A placeholder right after stands for what was glued to the domain
	// before it was redacted ("jo@x.com5551234567"): no address then either.
	if startsWithPlaceholder(s[end:]) || end+1 < len(s) && s[end] == '.' && startsWithPlaceholder(s[end+1:]) {
		return 0, false
	}
	return end, true
}

// localBefore returns the length of the local-part character that ends
// before s[i], or 0: an ASCII letter, digit or one of ._%+-' , or any
// other letter or digit (RFC 6531: "zoë@example.fr").
func localBefore(s string, i int) int {
	if i == 0 {
		return 0
	}
	if c := s[i-1]; c < utf8.RuneSelf {
		if isLocal(c) {
			return 1
		}
		return 0
	}
	r, n := utf8.DecodeLastRuneInString(s[:i])
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return n
	}
	return 0
}

// findSpokenEmails finds addresses a speech-to-text engine spelled out:
// "jane dot doe at gmail dot com", "j underscore smith at example dot co
// dot uk". The domain must end in a known top-level domain spoken as a
// word, and the local part may not be a pronoun ("email me at…"), so that
// ordinary speech with "at" and "dot" in it is left alone.
func (sc *scanner) findSpokenEmails() {
	s := sc.s
	n := len(sc.out)
	floor := 0 // the end of the previous spelled-out address
	for i := 0; i+4 <= len(s); {
		k := indexAt(s[i:])
		if k < 0 {
			break
		}
		a := i + k // s[a:a+4] == " at "
		i = a + 4
		hi, ok := spokenDomain(s, a+4)
		if !ok {
			continue
		}
		for _, f := range sc.out[sc.base:n] { // nor into a written one
			if f.End <= a && f.End > floor {
				floor = f.End
			}
		}
		lo, ok := spokenLocal(s, a, floor)
		if !ok || sc.overlapsEmail(lo, hi, n) {
			continue
		}
		sc.add(Email, lo, hi)
		i, floor = hi, hi
	}
	if len(sc.out) > n && n > 0 {
		sortFindings(sc.out[sc.base:])
	}
}

// overlapsEmail reports whether [lo, hi) overlaps one of the first n
// findings (the written addresses).
func (sc *scanner) overlapsEmail(lo, hi, n int) bool {
	for _, f := range sc.out[sc.base:n] {
		if lo < f.End && f.Start < hi {
			return true
		}
	}
	return false
}

// indexAt returns the index of " at " (any case) in s, or -1.
func indexAt(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if s[i] == ' ' && s[i+3] == ' ' && lower(s[i+1]) == 'a' && lower(s[i+2]) == 't' {
			return i
		}
	}
	return -1
}

// spokenSeps join the words of a spelled-out local part.
var spokenSeps = [...]string{" dot ", " underscore ", " dash ", " hyphen ", " period "}

// spokenLocal returns the start of the local part ending at s[end] (before
// " at "): a word, optionally preceded by more words joined by " dot ",
// " underscore ", " dash "; none of it before floor (the previous address).
func spokenLocal(s string, end, floor int) (int, bool) {
	lo, raw := wordBefore(s, end)
	if lo == end || raw < floor || end-lo > maxLocal || isStopWord(s[lo:end]) || raw > 0 && s[raw-1] == ']' && endsWithPlaceholder(s[:raw]) {
		return 0, false
	}
	for n := 0; n < 8; n++ { // at most eight joined words
		joined := false
		for _, sep := range spokenSeps {
			if lo >= len(sep)+1 && strings.EqualFold(s[lo-len(sep):lo], sep) {
				w, raw := wordBefore(s, lo-len(sep))
				if w < lo-len(sep) && raw >= floor && !isStopWord(s[w:lo-len(sep)]) {
					lo, joined = w, true
				}
				break
			}
		}
		if !joined {
			break
		}
	}
	return lo, true
}

// wordBefore returns the start of the local-part word ending at s[end],
// and where it starts with the punctuation before it (".jane" in
// "x.jane at…").
func wordBefore(s string, end int) (lo, raw int) {
	lo = end
	for lo > 0 && end-lo < maxLocal && (isAlnum(s[lo-1]) || s[lo-1] == '.' || s[lo-1] == '_' || s[lo-1] == '-') {
		lo--
	}
	raw = lo
	for lo < end && !isAlnum(s[lo]) {
		lo++
	}
	return lo, raw
}

// spokenDomain returns the end of a spelled-out domain starting at s[i]:
// word (" dot " word)+, the last word a top-level domain.
func spokenDomain(s string, i int) (int, bool) {
	end, dots := i, 0
	for n := 0; n < 6; n++ {
		j := end
		for j < len(s) && j-end < 63 && (isAlnum(s[j]) || s[j] == '-') {
			j++
		}
		if j == end {
			return 0, false
		}
		word := s[end:j]
		if dots > 0 && isSpokenTLD(word) && (j == len(s) || !isAlnum(s[j])) {
			// Take further labels ("co dot uk") only if they are TLDs too.
			if j+5 < len(s) && strings.EqualFold(s[j:j+5], " dot ") {
				k := j + 5
				m := k
				for m < len(s) && isLetter(s[m]) {
					m++
				}
				if m > k && isSpokenTLD(s[k:m]) && (m == len(s) || !isAlnum(s[m])) {
					return m, true
				}
			}
			return j, true
		}
		if n == 0 && isStopWord(word) {
			return 0, false
		}
		if j+5 > len(s) || !strings.EqualFold(s[j:j+5], " dot ") {
			return 0, false
		}
		end, dots = j+5, dots+1
	}
	return 0, false
}

// isSpokenTLD reports whether w is a top-level domain people say aloud.
func isSpokenTLD(w string) bool {
	if len(w) < 2 || len(w) > 4 {
		return false
	}
	var b [4]byte
	for i := 0; i < len(w); i++ {
		b[i] = lower(w[i])
	}
	switch string(b[:len(w)]) {
	case "com", "org", "net", "edu", "gov", "io", "co", "uk", "us", "ca", "de", "fr", "au", "in",
		"info", "biz", "me", "ai", "app", "dev", "mil", "ie", "nz", "nl", "es", "it":
		return true
	}
	return false
}

// isStopWord reports whether w is a word that stands before " at " in
// ordinary speech and is never a mailbox: "email me at", "we are at".
func isStopWord(w string) bool {
	if len(w) > 8 {
		return false
	}
	var b [8]byte
	for i := 0; i < len(w); i++ {
		b[i] = lower(w[i])
	}
	switch string(b[:len(w)]) {
	case "me", "us", "him", "her", "them", "you", "it", "is", "was", "are", "were", "be", "here", "there",
		"home", "work", "email", "e-mail", "mail", "address", "and", "or", "to", "look", "looking", "arrive",
		"arrives", "arrived", "meet", "see", "the", "a", "an", "of", "in", "on", "i", "we", "they",
		"she", "he", "office", "clinic", "store", "shop", "desk", "site", "point", "stop", "least", "most":
		return true
	}
	return false
}
