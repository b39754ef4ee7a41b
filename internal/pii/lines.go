package pii

import "strings"

// Context across lines. In a conversation the question and its answer are
// on two lines: "AI: What's your date of birth?" then "User: 3/15." The
// answer has no birth word of its own; what makes it a date of birth is
// the line before. A line asks for a date of birth (or an SSN) when it has
// a birth word (or a social-security word) with no digit after it on the
// line, and a question mark after it, or a request ("please", "I'll need",
// a sentence starting with "Confirm", "Tell me", …), or nothing but a colon
// after it (a form's label on its own line). On the next line that is not
// blank, the first date is then a date of birth (unless a question mark
// comes before it on that line: "When would you like to come in? 04/02 or
// 04/03"), and nine digits in an SSN's shape ("521 60 7784", "521607784",
// "five two nine, …") are an SSN. Not when both lines start with the same
// speaker's label ("AI: …" twice).
//
// Find applies this between the lines of one text (a transcript in one
// string); a Scanner also carries it from one text to the next, for a
// caller that reads line by line.

// Scanner finds personal data in a sequence of texts — a file read line by
// line, the turns of a conversation — carrying context from the last line
// of one text to the first of the next (see above). The zero value is
// ready to use; a Scanner is not safe for concurrent use. It keeps the
// last line that is not blank (a substring of the text it was given, not a
// copy).
type Scanner struct {
	prev     string
	ask      uint8 // what prev asks for, once askKnown is set
	anyLabel bool  // two lines with the same speaker label may be question and answer (RedactJSON's sequences)
}

// AppendFind appends the findings in text to dst, as the package's
// AppendFind does, with the context of the previous text, and returns the
// extended slice.
func (z *Scanner) AppendFind(dst []Finding, text string) []Finding {
	dst = appendFind(dst, text, z)
	if l := lastLine(text); l != "" {
		z.prev, z.ask = l, 0
	}
	return dst
}

// Find returns the findings in text, with the context of the previous text.
func (z *Scanner) Find(text string) []Finding { return z.AppendFind(nil, text) }

// Redact returns text with each finding replaced by its kind's placeholder,
// with the context of the previous text.
func (z *Scanner) Redact(text string) string { return Replace(text, z.Find(text)) }

// Reset forgets the previous text: the next one starts a new sequence.
func (z *Scanner) Reset() { z.prev, z.ask = "", 0 }

// lastLine returns the last line of s that is not blank, or "".
func lastLine(s string) string {
	for end := len(s); end > 0; {
		i := strings.LastIndexByte(s[:end], '\n')
		if l := s[i+1 : end]; !blank(l) {
			return l
		}
		end = max(i, 0)
	}
	return ""
}

func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// What a line asks for.
const (
	askDOB uint8 = 1 << iota
	askSSN
	askKnown // the line's asks were computed
)

// lineStart returns the start of the line s[lo] is on. Calls mostly come
// in increasing order of lo (the numeric scan): each searches only from
// the previous one.
func (sc *scanner) lineStart(lo int) int {
	if !sc.multiline() {
		return 0
	}
	if lo >= sc.lsAt {
		if i := strings.LastIndexByte(sc.s[sc.lsAt:lo], '\n'); i >= 0 {
			sc.lsVal = sc.lsAt + i + 1
		}
	} else {
		sc.lsVal = strings.LastIndexByte(sc.s[:lo], '\n') + 1
	}
	sc.lsAt = lo
	return sc.lsVal
}

// multiline reports whether sc.s has more than one line.
func (sc *scanner) multiline() bool {
	if sc.nl == 0 {
		sc.nl = 2
		if strings.IndexByte(sc.s, '\n') >= 0 {
			sc.nl = 1
		}
	}
	return sc.nl == 1
}

// asked returns what the line before the one starting at s[ls] asks for:
// the previous line that is not blank, or the Scanner's previous text's;
// nothing if both lines start with the same speaker's label ("AI: What's
// your date of birth?" then "AI: You're booked for March 10").
func (sc *scanner) asked(ls int) uint8 {
	if sc.askLS == ls && sc.ask&askKnown != 0 {
		return sc.ask
	}
	var prev string
	var ask uint8
	inText := false
	for e := ls - 1; e > 0; {
		b := strings.LastIndexByte(sc.s[:e], '\n') + 1
		if l := sc.s[b:e]; !blank(l) {
			prev, inText = l, true
			break
		}
		e = b - 1
	}
	switch {
	case inText:
		ask = asks(prev)
	case sc.z != nil && sc.z.prev != "":
		prev = sc.z.prev
		if sc.z.ask&askKnown == 0 {
			sc.z.ask = asks(prev) | askKnown
		}
		ask = sc.z.ask
	}
	if ask&(askDOB|askSSN) != 0 && !(sc.z != nil && sc.z.anyLabel) {
		line := sc.s[ls:]
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		if l := label(line); l != "" && l == label(prev) {
			ask = 0
		}
	}
	sc.askLS, sc.ask = ls, ask|askKnown
	return sc.ask
}

// label returns the speaker's label that starts line ("AI", "User",
// "Agent note"): one or two words before a colon and a space; or "".
func label(line string) string {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	st, words := i, 0
	for i < len(line) && i-st <= 24 {
		switch c := line[i]; {
		case isLetter(c):
			j := wordEnd(line, i)
			if words++; words > 2 {
				return ""
			}
			i = j
		case c == ' ' && words > 0:
			i++
		case c == ':' && words > 0 && (i+1 == len(line) || line[i+1] == ' '):
			return line[st:i]
		default:
			return ""
		}
	}
	return ""
}

// answersBirth reports whether the date starting at s[lo] answers a
// question about a date of birth on the line before: it is the first date
// on its line (a "[DOB]" counts, as it was one), with no question mark
// before it on the line.
func (sc *scanner) answersBirth(lo int) bool {
	if (sc.z == nil || sc.z.prev == "") && !sc.multiline() {
		return false
	}
	ls := sc.lineStart(lo)
	if !sc.firstDate(ls, lo) || sc.asked(ls)&askDOB == 0 {
		return false
	}
	before := sc.s[ls:lo]
	// A "[DOB]" before it was the first date, before it was redacted.
	return strings.IndexByte(before, '?') < 0 && !strings.Contains(before, DOB.Placeholder())
}

// firstDate reports whether no date seen so far starts in s[ls:lo].
func (sc *scanner) firstDate(ls, lo int) bool {
	n := min(sc.nDates, len(sc.dates))
	least := lo
	for k := 0; k < n; k++ {
		d := sc.dates[k]
		if d >= ls && d < lo {
			return false
		}
		least = min(least, d)
	}
	// Dates the ring no longer holds came before those it holds, in the
	// numeric scan: on an earlier line if the earliest it holds is.
	return sc.nDates <= len(sc.dates) || least < ls
}

// answersSSN reports whether the line before the one s[lo] is on asks for
// an SSN.
func (sc *scanner) answersSSN(lo int) bool {
	if (sc.z == nil || sc.z.prev == "") && !sc.multiline() {
		return false
	}
	return sc.asked(sc.lineStart(lo))&askSSN != 0
}

// sawDate records that a date starts at s[lo], for firstDate: a date
// after it on its line is not the answer to the line before. The last few
// are kept, in a ring.
func (sc *scanner) sawDate(lo int) {
	if sc.nDates > 0 && sc.dates[(sc.nDates-1)%len(sc.dates)] == lo {
		return
	}
	sc.dates[sc.nDates%len(sc.dates)] = lo
	sc.nDates++
}

// asks returns what the line s asks for (see the top of this file).
func asks(s string) uint8 {
	dobEnd, ssnEnd := -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c != 'b' && c != 'd' && c != 's' || !isLetter(s[i]) {
			continue // most letters start no keyword: decide on the byte
		}
		if e := birthWordAt(s, i); e > 0 {
			if !(i >= 6 && hasFold(s, i-6, "happy ")) { // "Happy birthday! How can I help?"
				dobEnd = e
			}
			i = e - 1
			continue
		}
		if c == 's' {
			if e := ssnWordAt(s, i, wordEnd(s, i)); e > 0 {
				ssnEnd, i = e, e-1
			}
		}
	}
	if dobEnd < 0 && ssnEnd < 0 {
		return 0
	}
	request := hasRequest(s)
	var what uint8
	if dobEnd >= 0 && asksAfter(s, dobEnd, request) {
		what |= askDOB
	}
	if ssnEnd >= 0 && asksAfter(s, ssnEnd, request) {
		what |= askSSN
	}
	return what
}

// hasRequest reports whether the line s makes a request (isRequest).
func hasRequest(s string) bool {
	start := true
	for i := 0; i < len(s); {
		c := s[i]
		if !isLetter(c) {
			if c == ':' || (c == '.' || c == '!' || c == '?') && (i+1 == len(s) || s[i+1] == ' ') {
				start = true // a new sentence, or what a speaker says
			}
			i++
			continue
		}
		j := wordEnd(s, i)
		if isRequest(s[i:j], start) {
			return true
		}
		i, start = j, false
	}
	return false
}

// asksAfter reports whether the keyword ending at s[e] asks for its value:
// no digit (or placeholder) after it on the line, and a question mark
// after it, a word of request on the line, or only a colon after it.
func asksAfter(s string, e int, request bool) bool {
	q, colon, rest := false, false, false
	for i := e; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c), c == '[' && startsWithPlaceholder(s[i:]):
			return false
		case c == '?':
			q = true
		case c == ':':
			colon = !rest
		case c != ' ' && c != '\t' && c != '\r':
			rest = true
		}
	}
	return q || request || colon && !rest
}

// ssnWordAt returns the end of a word at s[i:j] that names a social
// security number — "SSN", "social security", "social" alone as a noun
// ("what's your social?") — or 0. "Social insurance", "social media" and
// the like are not.
func ssnWordAt(s string, i, j int) int {
	if i > 0 && isLetter(s[i-1]) {
		return 0
	}
	switch {
	case isWord(s, i, j, "ssn"), isWord(s, i, j, "ssns"):
		return j
	case isWord(s, i, j, "social"), isWord(s, i, j, "socials"):
		if hasFold(s, j, " security") && !letterAt(s, j+9) {
			return j + 9
		}
		if j < len(s) && s[j] == ' ' && letterAt(s, j+1) {
			// "social number", "social is"; not "social insurance",
			// "social worker", "social media".
			k := wordEnd(s, j+1)
			for _, w := range [...]string{"number", "no", "is", "was", "please", "and", "or", "for", "on"} {
				if isWord(s, j+1, k, w) {
					return j
				}
			}
			return 0
		}
		return j
	}
	return 0
}

// isRequest reports whether the word w asks for something: "please" and
// "need" anywhere ("Your date of birth, please", "I'll need your SSN"), a
// verb of request at the start of a sentence ("Confirm your date of
// birth"; not "I can confirm your date of birth is on file").
func isRequest(w string, start bool) bool {
	if len(w) < 3 || len(w) > 7 {
		return false
	}
	var b [7]byte
	for i := 0; i < len(w); i++ {
		b[i] = lower(w[i])
	}
	switch string(b[:len(w)]) {
	case "please", "need":
		return true
	case "confirm", "verify", "provide", "give", "tell", "say", "spell", "enter", "read", "repeat", "type", "state":
		return start
	}
	return false
}
