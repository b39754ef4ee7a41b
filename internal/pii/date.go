package pii

// date matches a date at group i — numeric ("03/14/1985", "1985-03-14",
// "14.03.1985", "3-14-85") or with a month name ("March 14, 1985", "14th of
// March 1985", "14-Mar-85") — and reports it as a date of birth when a
// birth word stands next to it. Other dates are taken too, but not
// reported, so that their digits are not read as something else and a
// birth word before them does not reach a date after them ("DOB on file;
// appointment 04/02/2026"). Only next to a birth word: "3/14" and
// "19850314".
func (sc *scanner) date(r *run, i int) (last, resume int, ok bool) {
	g := r.g[i]
	if lo, hi, ok := sc.textDate(g); ok {
		sc.dateFound(lo, hi)
		if hi > r.end {
			return i, hi, true
		}
		last = i
		for last+1 < r.n && r.g[last+1].start < hi {
			last++
		}
		return last, 0, true
	}
	if g.parens() || i > 0 && g.sep != sepSpace {
		return 0, 0, false
	}
	if i+2 < r.n {
		b, c := r.g[i+1], r.g[i+2]
		sp := b.sep
		if (sp == sepSlash || sp == sepDash || sp == sepDot) && c.sep == sp && !b.parens() && !c.parens() &&
			!(i+3 < r.n && r.g[i+3].sep == sp) && !(i+2 == r.n-1 && r.more) && sc.numericDate(g, b, c) {
			sc.dateFound(g.start, c.end)
			return i + 2, 0, true
		}
	}
	// Forms that are dates of birth only next to a birth word.
	if i+1 < r.n {
		b := r.g[i+1]
		if sp := b.sep; (sp == sepSlash || sp == sepDash || sp == sepDot) && !b.parens() && g.len() <= 2 && b.len() <= 2 &&
			!(i+2 < r.n && r.g[i+2].sep != sepSpace) && sc.tailOK(r, i+1) {
			m, d := sc.value(g), sc.value(b)
			if (isMonth(m) && isDay(d) || isDay(m) && isMonth(d)) && sc.isBirth(g.start, b.end) && sc.emit(DOB, g.start, b.end) {
				sc.sawDate(g.start)
				return i + 1, 0, true
			}
		}
	}
	if g.len() == 8 && (i+1 == r.n || r.g[i+1].sep == sepSpace) && sc.tailOK(r, i) {
		s := sc.s[g.start:g.end]
		y1, m1, d1 := atoi(s[:4]), atoi(s[4:6]), atoi(s[6:]) // YYYYMMDD
		a, b, y2 := atoi(s[:2]), atoi(s[2:4]), atoi(s[4:])   // MMDDYYYY or DDMMYYYY
		if (isYear(y1) && isMonth(m1) && isDay(d1) || isYear(y2) && (isMonth(a) && isDay(b) || isDay(a) && isMonth(b))) &&
			sc.isBirth(g.start, g.end) && sc.emit(DOB, g.start, g.end) {
			sc.sawDate(g.start)
			return i, 0, true
		}
	}
	return 0, 0, false
}

// dateFound reports the date s[lo:hi] as a date of birth if a birth word
// stands next to it; any date ends the reach of the context before it.
func (sc *scanner) dateFound(lo, hi int) {
	birth := sc.isBirth(lo, hi)
	sc.sawDate(lo)
	if birth && sc.emit(DOB, lo, hi) {
		return
	}
	if hi > sc.barrier {
		sc.barrier = hi
	}
}

// isBirth reports whether a birth word stands next to the date s[lo:hi],
// the date continues a list of dates of birth, or it answers the previous
// line's question about a date of birth.
func (sc *scanner) isBirth(lo, hi int) bool {
	return sc.birthWordBefore(lo) || sc.birthWordAfter(hi) || sc.listedAfterBirth(lo) || sc.answersBirth(lo)
}

// listMax bounds the words between two dates of birth in a list.
const listMax = 40

// listedAfterBirth reports whether the date at s[lo] continues a list of
// dates of birth: a date of birth ends shortly before it, and what stands
// between names the person the date is of, with only joining words besides
// ("DOB for the primary is 1971-10-05 and the dependant 2009-06-17",
// "Birthdays: Mom 4/12, Dad 9/30", "mine is … and my husband's is …"), or
// is "to" ("corrected from 05/06/1971 to 06/05/1971"). Any other word ends
// the list ("DOB 03/14/1985, visit 04/02/2026", "b. 1948-10-21, d.
// 2019-04-02"), and so does the end of a sentence; "and" alone does not
// make one ("born 14 March 1985, and 03/20/2026 suits me").
func (sc *scanner) listedAfterBirth(lo int) bool {
	e := -1
	for _, f := range sc.out[sc.base:] {
		if f.Kind == DOB && f.End <= lo && f.End > e {
			e = f.End
		}
	}
	if e < 0 || lo-e > listMax {
		return false
	}
	s := sc.s
	person, words, to := false, 0, false
	for i := e; i < lo; {
		c := s[i]
		switch {
		case isLetter(c):
			j := wordEnd(s, i)
			w := listWord(s[i:j])
			if w == 0 {
				return false
			}
			person = person || w == listPerson
			to = isWord(s, i, j, "to")
			words++
			i = j
		case c == ' ' || c == ',' || c == '\'' || c == '&':
			i++
		default:
			return false
		}
	}
	return person || words == 1 && to
}

// What a word between two dates of birth in a list is.
const (
	listJoin   = 1 + iota // "and", "the", "is", …
	listPerson            // "husband", "Mom", "mine", …
)

// listWord returns what w is in a list of dates of birth, or 0 if it may
// not stand in one.
func listWord(w string) int {
	if len(w) > 10 {
		return 0
	}
	var b [10]byte
	for i := 0; i < len(w); i++ {
		b[i] = lower(w[i])
	}
	switch string(b[:len(w)]) {
	case "and", "or", "to", "then", "for", "is", "was", "s", "of", "the", "my", "her", "their", "our", "also", "plus":
		return listJoin
	case "me", "mine", "his", "hers", "theirs", "dependant", "dependent", "husband", "wife", "spouse", "partner",
		"son", "daughter", "child", "kid", "baby", "mom", "mum", "mother", "dad", "father", "brother", "sister",
		"twin", "grandma", "grandpa", "primary", "secondary", "subscriber", "holder", "applicant", "patient":
		return listPerson
	}
	return 0
}

func isYear(y int) bool  { return 1900 <= y && y <= 2099 }
func isMonth(m int) bool { return 1 <= m && m <= 12 }
func isDay(d int) bool   { return 1 <= d && d <= 31 }

// numericDate reports whether the groups a, b, c form a date: Y-M-D, or
// M/D/Y or D/M/Y with a two- or four-digit year.
func (sc *scanner) numericDate(a, b, c group) bool {
	la, lb, lc := a.len(), b.len(), c.len()
	va, vb, vc := sc.value(a), sc.value(b), sc.value(c)
	if la == 4 {
		return lb <= 2 && lc <= 2 && isYear(va) && isMonth(vb) && isDay(vc)
	}
	if la > 2 || lb > 2 || lc != 2 && lc != 4 || lc == 4 && !isYear(vc) {
		return false
	}
	return isMonth(va) && isDay(vb) || isDay(va) && isMonth(vb)
}

// textDate matches a date written with a month name around the day in g:
// "March 14", "Mar. 14th, 1985", "Sept 5 '90", "14 March 1985", "14th of
// March", "14-Mar-85".
func (sc *scanner) textDate(g group) (lo, hi int, ok bool) {
	s := sc.s
	if g.parens() || g.len() > 2 || !isDay(sc.value(g)) {
		return 0, 0, false
	}
	e := ordinal(s, g.end)
	if e < len(s) && isAlnum(s[e]) {
		return 0, 0, false // "14am", "3x"
	}
	if ws, ok := monthBefore(s, g.start); ok {
		hi = e
		if ye, ok := yearAfter(s, e); ok {
			hi = ye
		}
		return ws, hi, true
	}
	if me, ok := monthAfter(s, e); ok {
		hi = me
		if ye, ok := yearAfter(s, me); ok {
			hi = ye
		}
		return g.start, hi, true
	}
	return 0, 0, false
}

// ordinal returns the end of the ordinal suffix ("st", "nd", "rd", "th")
// at s[e], or e.
func ordinal(s string, e int) int {
	if e+1 >= len(s) || letterAt(s, e+2) {
		return e
	}
	switch a, b := lower(s[e]), lower(s[e+1]); {
	case a == 's' && b == 't', a == 'n' && b == 'd', a == 'r' && b == 'd', a == 't' && b == 'h':
		return e + 2
	}
	return e
}

// monthBefore returns the start of the month name before the day at s[i]
// ("March 14", "Mar. 14", "Mar-14").
func monthBefore(s string, i int) (int, bool) {
	j := i
	if j == 0 || s[j-1] != ' ' && s[j-1] != '-' {
		return 0, false
	}
	j--
	if j > 0 && s[j-1] == '.' {
		j--
	}
	we := j
	for j > 0 && isLetter(s[j-1]) && we-j < 10 {
		j--
	}
	if j > 0 && isLetter(s[j-1]) || !isMonthName(s[j:we]) {
		return 0, false
	}
	return j, true
}

// monthAfter returns the end of the month name after the day ending at
// s[e] ("14 March", "14th of March", "14-Mar").
func monthAfter(s string, e int) (int, bool) {
	j := e
	switch {
	case j < len(s) && s[j] == '-':
		j++
	case j < len(s) && s[j] == ' ':
		j++
		if hasFold(s, j, "of ") {
			j += 3
		}
	default:
		return 0, false
	}
	k := j
	for k < len(s) && isLetter(s[k]) && k-j < 10 {
		k++
	}
	if letterAt(s, k) || !isMonthName(s[j:k]) {
		return 0, false
	}
	if k-j <= 4 && k < len(s) && s[k] == '.' && k-j > 0 {
		k++ // "Mar."
	}
	return k, true
}

// yearAfter returns the end of the year after a day or month ending at
// s[e]: ", 1985", " 1985", "-1985", " '85", "-85".
func yearAfter(s string, e int) (int, bool) {
	j := e
	if j < len(s) && s[j] == ',' {
		j++
	}
	dash := false
	switch {
	case j < len(s) && s[j] == ' ':
		j++
	case j == e && j < len(s) && s[j] == '-':
		j, dash = j+1, true
	case j == e:
		return 0, false
	}
	apos := false
	if j < len(s) && s[j] == '\'' {
		j, apos = j+1, true
	} else if hasFold(s, j, "\u2019") {
		j, apos = j+len("\u2019"), true
	}
	k := j
	for k < len(s) && isDigit(s[k]) && k-j < 5 {
		k++
	}
	if k < len(s) && isAlnum(s[k]) || k+1 < len(s) && (s[k] == ':' || s[k] == '.' || s[k] == ',') && isDigit(s[k+1]) {
		return 0, false
	}
	switch k - j {
	case 4:
		return k, isYear(atoi(s[j:k]))
	case 2:
		return k, apos || dash
	}
	return 0, false
}

// isMonthName reports whether w names a month, in full or abbreviated.
func isMonthName(w string) bool {
	if len(w) < 3 || len(w) > 9 {
		return false
	}
	switch lower(w[0]) { // most words are not months: decide on the first letter
	case 'j', 'f', 'm', 'a', 's', 'o', 'n', 'd':
	default:
		return false
	}
	var b [9]byte
	for i := 0; i < len(w); i++ {
		b[i] = lower(w[i])
	}
	switch string(b[:len(w)]) {
	case "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june",
		"jul", "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov", "november",
		"dec", "december":
		return true
	}
	return false
}
