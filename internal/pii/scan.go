package pii

// The numbers (phones, SSNs, cards, dates) are found by one pass over the
// text. At each digit (or '+' or '(' before one) the scanner reads a run:
// groups of digits joined by single separators — a space, '-', " - ", an
// en dash, '.', '/', or parentheses — as in "+44 (0)20 7946 0958" or "4111-1111-1111-1111".
// Each kind is then a rule over the groups' lengths and separators, tried at
// each group that may start a finding, in this order: dates, international
// phone numbers, cards, SSNs, national phone numbers, and phone numbers
// only context announces. A run glued to letters ("1Z999AA10123456784",
// "INV-2024-0042", "v1.2.3") is an identifier and starts nothing.

// sep is the separator before a group.
type sep uint8

const (
	sepNone  sep = iota // only a parenthesis: "(555)123", "(0)20"
	sepSpace            // ' '
	sepDash             // '-' or " - "
	sepDot              // '.'
	sepSlash            // '/'
)

// group is a run of digits s[start:end]; lo and hi include the parentheses
// around it, if any.
type group struct {
	start, end int
	lo, hi     int
	sep        sep // the separator before it (sepNone for a run's first group)
}

func (g group) len() int     { return g.end - g.start }
func (g group) parens() bool { return g.lo != g.start }

// maxGroups bounds a run. A longer one (a table of numbers, digits said
// one by one past any card's length) starts no finding.
const maxGroups = 24

// run is a sequence of groups.
type run struct {
	g         [maxGroups]group
	n         int
	plus      int  // index of a leading '+', or -1
	more      bool // more groups follow g[n-1]
	taintedTo int  // groups before this index are glued to an identifier and start nothing
	free      int  // the first group after the last one a finding or date took
	end       int  // where scanning resumes
}

// scanner holds the state of one AppendFind call.
type scanner struct {
	s            string
	out          []Finding
	base, nEmail int // sc.out[base:base+nEmail] are the e-mail addresses
	ei           int // the next of them, relative to base
	barrier      int // end of the last finding or date: context before it belongs to it
	lastEnd      int // end of the last numeric finding

	// Context across lines (lines.go).
	z           *Scanner // the Scanner whose previous text comes before this one, or nil
	nl          uint8    // 0 not known yet, 1 text has several lines, 2 one
	lsAt, lsVal int      // lineStart's cache: the last position looked up, the start of its line
	askLS       int      // the line whose previous line's asks are in ask
	ask         uint8    // askDOB, askSSN, askKnown
	dates       [8]int   // a ring of where the last dates seen start
	nDates      int      // how many dates were seen
}

// starts marks the bytes a run can start with.
var starts = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true,
	'7': true, '8': true, '9': true, '+': true, '(': true}

// scan finds the numbers in sc.s.
func (sc *scanner) scan() {
	s := sc.s
	var r run
	for p := 0; p < len(s); {
		if !starts[s[p]] {
			p++
			continue
		}
		if e, in := sc.inEmail(p); in {
			p = e
			continue
		}
		if !sc.readRun(p, &r) {
			p++
			continue
		}
		p = sc.matchRun(&r)
	}
}

// inEmail reports whether s[p] is inside an e-mail address, and its end.
func (sc *scanner) inEmail(p int) (int, bool) {
	for sc.ei < sc.nEmail && sc.out[sc.base+sc.ei].End <= p {
		sc.ei++
	}
	if sc.ei < sc.nEmail && sc.out[sc.base+sc.ei].Start <= p {
		return sc.out[sc.base+sc.ei].End, true
	}
	return 0, false
}

// placeholderJoined reports whether a placeholder follows s[e] after what
// could have been a separator: a run that went on into a finding before it
// was redacted.
func (sc *scanner) placeholderJoined(e int) bool {
	s := sc.s
	for j := e; j < len(s) && j < e+4; j++ {
		switch s[j] {
		case ' ', '-', '.', '/', '(', ')', 0xE2, 0x80, 0x93:
		case '[':
			return j > e && startsWithPlaceholder(s[j:])
		default:
			return false
		}
	}
	return false
}

// emailStarts reports whether an e-mail address starts in s[i:j+1]: a run
// ends before it ("555 1234 jo@x.com", "0 at 0 dot com").
func (sc *scanner) emailStarts(i, j int) bool {
	for e := sc.ei; e < sc.nEmail; e++ {
		f := sc.out[sc.base+e]
		if f.Start > j {
			return false
		}
		if f.Start >= i {
			return true
		}
	}
	return false
}

// readRun reads the run starting at s[p] into r; false if there is none.
func (sc *scanner) readRun(p int, r *run) bool {
	s := sc.s
	n := len(s)
	r.n, r.more, r.plus, r.taintedTo = 0, false, -1, 0
	q := p
	if s[q] == '+' {
		r.plus = q
		q++
	}
	open := q < n && s[q] == '('
	if open {
		q++
	}
	if q >= n || !isDigit(s[q]) {
		return false
	}
	sp := sepNone
	last := q
	for {
		st := q
		for q < n && isDigit(s[q]) {
			q++
		}
		g := group{start: st, end: q, lo: st, hi: q, sep: sp}
		if open && q < n && s[q] == ')' {
			g.lo, g.hi = st-1, q+1
			q++
		}
		if r.n < maxGroups {
			r.g[r.n] = g
			r.n++
		} else {
			r.more = true
		}
		last = g.hi
		t := q
		sp = sepNone
		if t < n {
			switch s[t] {
			case ' ':
				if t+2 < n && s[t+1] == '-' && s[t+2] == ' ' {
					t, sp = t+3, sepDash
				} else {
					t, sp = t+1, sepSpace
				}
			case '-':
				t, sp = t+1, sepDash
			case 0xE2: // "\u2013", an en dash: "555\u2013123\u20134567"
				if t+2 < n && s[t+1] == 0x80 && s[t+2] == 0x93 {
					t, sp = t+3, sepDash
				}
			case '.':
				t, sp = t+1, sepDot
			case '/':
				t, sp = t+1, sepSlash
			}
		}
		open = t < n && s[t] == '('
		if open {
			t++
		}
		if t >= n || !isDigit(s[t]) || (sp == sepNone && !g.parens() && !open) || sc.emailStarts(q, t) {
			break
		}
		q = t
	}
	r.end = last
	if r.more {
		r.taintedTo = r.n // too long
		return true
	}
	if sc.placeholderJoined(r.end) {
		r.more = true // a redacted group follows: the run went on before redaction
	}
	start := p
	if !sc.tainted(start) {
		return true
	}
	// Glued to an identifier: so are the groups joined tightly to it.
	r.taintedTo = r.n
	for k := 1; k < r.n; k++ {
		if r.g[k].sep == sepSpace {
			r.taintedTo = k
			break
		}
	}
	return true
}

// tainted reports whether a run starting at s[a] continues an identifier,
// a decimal or a price: "A12", "INV-2024", "1,234", "10:30", "$5".
func (sc *scanner) tainted(a int) bool {
	s := sc.s
	if a == 0 {
		return false
	}
	c := s[a-1]
	if sc.glued(a) || c == '_' || c == '$' || c == '#' && sc.glued(a-1) {
		return true
	}
	if c >= 0x80 { // "£5", "€5", "¥5": the last byte of the symbol
		return a >= 2 && (s[a-2:a] == "£" || s[a-2:a] == "¥") || a >= 3 && s[a-3:a] == "€"
	}
	switch c {
	case '-', '/', '\\':
		return sc.glued(a - 1)
	case '.', ',', ':':
		return a >= 2 && (isDigit(s[a-2]) || s[a-2] == ']' && sc.glued(a-1))
	}
	return false
}

// glued reports whether s[:e] ends with a letter, a digit, or a
// placeholder (which stands for the digits or letters it replaced, so that
// redacted text redacts to itself).
func (sc *scanner) glued(e int) bool {
	if e <= 0 {
		return false
	}
	c := sc.s[e-1]
	return isAlnum(c) || c == ']' && endsWithPlaceholder(sc.s[:e])
}

// tailOK reports whether group k of r may end a finding: it is not glued to
// what follows ("4567x", "10%", "1,234", "12:30").
func (sc *scanner) tailOK(r *run, k int) bool {
	if k < r.n-1 {
		return true
	}
	if r.more {
		return false
	}
	s := sc.s
	hi := r.g[k].hi
	if hi >= len(s) {
		return true
	}
	c := s[hi]
	if isAlnum(c) || c == '_' || c == '%' || c == '@' || c == '[' && startsWithPlaceholder(s[hi:]) {
		return false
	}
	if hi+1 < len(s) {
		d := s[hi+1]
		if d == '[' && startsWithPlaceholder(s[hi+1:]) {
			// What was glued on was a finding: "1,[PHONE]" was "1,555…".
			return c != ',' && c != ':' && c != '-' && c != '/' && c != '\\' && c != '.'
		}
		switch c {
		case ',', ':':
			return !isDigit(d)
		case '-', '/', '\\':
			return !isAlnum(d)
		case '.': // "4567.pdf" continues; "4567.Thanks" is a new sentence
			return !isLower(d) && !isDigit(d)
		}
	}
	return true
}

// matchRun tries the rules at each group of r and returns where scanning
// resumes.
func (sc *scanner) matchRun(r *run) int {
	r.free = 0
	for i := 0; i < r.n; {
		if i < r.taintedTo {
			i++
			continue
		}
		last, resume := sc.matchAt(r, i)
		if resume > 0 {
			return resume
		}
		if last >= i {
			i = last + 1
			r.free = i
		} else {
			i++
		}
	}
	return r.end
}

// matchAt tries each rule at group i. It returns the last group a finding
// (or a date) took, or -1; or, for a date written with a month name that
// ends past the run, where scanning resumes.
func (sc *scanner) matchAt(r *run, i int) (last, resume int) {
	if last, resume, ok := sc.date(r, i); ok {
		return last, resume
	}
	if i == 0 && r.plus >= 0 {
		if last, ok := sc.intl(r); ok && sc.emit(Phone, r.plus, r.g[last].hi) {
			return last, 0
		}
	}
	if last, ok := sc.card(r, i); ok && sc.emit(Card, r.g[i].start, r.g[last].end) {
		return last, 0
	}
	if last, ok := sc.ssn(r, i); ok && sc.emit(SSN, r.g[i].start, r.g[last].end) {
		return last, 0
	}
	if last, ok := sc.nanp(r, i); ok && sc.emit(Phone, r.g[i].lo, r.g[last].end) {
		return last, 0
	}
	if last, ok := sc.trunk(r, i); ok && sc.emit(Phone, r.g[i].lo, r.g[last].end) {
		return last, 0
	}
	if last, ok := sc.contextPhone(r, i); ok && sc.emit(Phone, r.g[i].lo, r.g[last].end) {
		return last, 0
	}
	return -1, 0
}

// emit appends a finding unless it overlaps an e-mail address or the
// previous finding, and reports whether it did.
func (sc *scanner) emit(k Kind, lo, hi int) bool {
	if lo < sc.lastEnd {
		return false
	}
	for e := sc.ei; e < sc.nEmail; e++ {
		f := sc.out[sc.base+e]
		if f.Start >= hi {
			break
		}
		if lo < f.End {
			return false
		}
	}
	sc.add(k, lo, hi)
	sc.barrier, sc.lastEnd = hi, hi
	return true
}

// value returns the number s[g.start:g.end] (at most 4 digits).
func (sc *scanner) value(g group) int {
	v := 0
	for i := g.start; i < g.end && i < g.start+4; i++ {
		v = v*10 + int(sc.s[i]-'0')
	}
	return v
}

// intl matches a number in international format at the start of r: '+',
// a country code and at most 15 digits in all (ITU-T E.164), grouped in
// any way: "+15551234567", "+1 (555) 123-4567", "+44 (0)20 7946 0958",
// "+49 30 123456", "+33 1 23 45 67 89".
func (sc *scanner) intl(r *run) (last int, ok bool) {
	g0 := r.g[0]
	cc := sc.s[g0.start]
	if cc == '0' {
		return 0, false
	}
	total := 0
	last = -1
	for k := 0; k < r.n; k++ {
		g := r.g[k]
		l := g.len()
		if k > 0 {
			// A short group after a complete-looking number is something
			// else: "+44 20 7946 0958 12 times".
			if g.sep == sepSlash || (g.sep == sepSpace && (total >= 12 || total >= 10 && l <= 2)) {
				break
			}
		}
		if k > 0 && g.parens() && l == 1 && sc.s[g.start] == '0' {
			last = k // "+44 (0)20": the trunk prefix, not dialled from abroad
			continue
		}
		if total+l > 15 {
			break
		}
		total += l
		last = k
		if cc == '1' && total >= 11 { // North America: +1 and ten digits
			break
		}
	}
	if last < 0 || total < 8 || (cc == '1' && total != 11) {
		return 0, false
	}
	if last+1 < r.n && r.g[last+1].sep != sepSpace {
		return 0, false // "+1-555-123-4567-89": too long
	}
	return last, sc.tailOK(r, last)
}

// nanp matches a North American number in national format: "(555)
// 123-4567", "555-123-4567", "555.123.4567", "555 123 4567", with an
// optional leading 1 ("1-800-555-0199", "1 (555) 123-4567").
func (sc *scanner) nanp(r *run, i int) (last int, ok bool) {
	s := sc.s
	j := i
	if r.g[i].len() == 1 && s[r.g[i].start] == '1' && !r.g[i].parens() && i+3 < r.n {
		if sp := r.g[i+1].sep; sp == sepSpace || sp == sepDash || sp == sepDot || (sp == sepNone && r.g[i+1].parens()) {
			j = i + 1
		}
	}
	if j+2 >= r.n {
		return 0, false
	}
	a, b, c := r.g[j], r.g[j+1], r.g[j+2]
	if a.len() != 3 || b.len() != 3 || c.len() != 4 || b.parens() || c.parens() {
		return 0, false
	}
	if !joins(b.sep) && !(b.sep == sepNone && a.parens()) || !joins(c.sep) {
		return 0, false
	}
	if i > 0 && (r.g[i].sep == sepDash || r.g[i].sep == sepDot) {
		return 0, false // "12-555-123-4567": part of something longer
	}
	if j+3 < r.n && r.g[j+3].sep != sepSpace {
		return 0, false // "555-123-4567-89"
	}
	if !sc.tailOK(r, j+2) {
		return 0, false
	}
	if !a.parens() && b.sep == sepSpace && c.sep == sepSpace && s[a.start] <= '1' {
		return 0, false // "123 456 7890": area codes start with 2-9; context may still say phone
	}
	if sc.adjacentOther(r.g[i].lo) {
		return 0, false // "Order #482-193-7750"
	}
	return j + 2, true
}

// joins reports whether sp may join the groups of a phone number.
func joins(sp sep) bool { return sp == sepSpace || sp == sepDash || sp == sepDot }

// trunk matches a national number with a trunk prefix 0 (or an
// international one written with 00): "020 7946 0958", "(020) 7946 0958",
// "07700 900123", "0161-496-0000", "030 123456", "030/123456",
// "01 23 45 67 89", "0044 20 7946 0958". It needs at least two groups, one
// separator throughout, and 9 to 11 digits (11 to 17 after 00).
func (sc *scanner) trunk(r *run, i int) (last int, ok bool) {
	s := sc.s
	g := r.g[i]
	l := g.len()
	if s[g.start] != '0' || l < 2 {
		return 0, false
	}
	if i != r.free {
		return 0, false // inside a longer run: "9400 1000 0000 0000 0000 00"
	}
	lo, hi := 9, 11
	if s[g.start+1] == '0' {
		if l < 3 || s[g.start+2] == '0' {
			return 0, false // 00 and a country code, which never starts with 0
		}
		lo, hi = 11, 17
	}
	total, last := l, i
	main := sep(255)
	for k := i + 1; k < r.n; k++ {
		h := r.g[k]
		hl := h.len()
		if h.parens() || hl < 2 {
			break
		}
		if k == i+1 {
			if h.sep == sepNone && !g.parens() {
				break
			}
		} else {
			if !joins(h.sep) || (main != 255 && h.sep != main) {
				break
			}
			main = h.sep
		}
		if total+hl > hi || (total >= 10 && hl <= 2) {
			break
		}
		total += hl
		last = k
	}
	if last == i || total < lo {
		return 0, false
	}
	if last+1 < r.n && r.g[last+1].sep != sepSpace {
		return 0, false
	}
	if !sc.tailOK(r, last) || sc.adjacentOther(g.lo) {
		return 0, false
	}
	return last, true
}

// contextPhone matches what only the words before it say is a phone
// number: 7 to 15 digits in any grouping, after "call", "phone", "my
// number is", "mobile:" and the like ("call me on 555 1234", "my cell is
// 98765 43210", "callbackNumber":"5551234567").
func (sc *scanner) contextPhone(r *run, i int) (last int, ok bool) {
	g := r.g[i]
	if i != r.free {
		return 0, false // inside a longer run: "4970 1687 7313 2281"
	}
	total := 0
	last = -1
	for k := i; k < r.n; k++ {
		h := r.g[k]
		if k > i && (h.sep == sepSlash || h.parens()) {
			break
		}
		if total+h.len() > 15 {
			return 0, false
		}
		total += h.len()
		last = k
	}
	if total < 7 || !sc.tailOK(r, last) {
		return 0, false
	}
	if last+1 < r.n && r.g[last+1].sep != sepSpace {
		return 0, false
	}
	return last, sc.topicBefore(g.lo, topicWindow) == topicPhone
}

// ssn matches a US social security number: "123-45-6789"; "123 45 6789" and
// "123456789" only next to "SSN", "social security" or the like, before
// or after them, or on the line after a question for one (ssnContext). The area
// cannot be 000, 666 or 900-999, the group 00, the serial 0000.
func (sc *scanner) ssn(r *run, i int) (last int, ok bool) {
	g := r.g[i]
	if g.parens() {
		return 0, false
	}
	if g.len() == 9 {
		if r.n > i+1 && r.g[i+1].sep != sepSpace || !sc.tailOK(r, i) {
			return 0, false
		}
		if i > 0 && g.sep != sepSpace {
			return 0, false
		}
		s := sc.s
		area, grp, serial := atoi(s[g.start:g.start+3]), atoi(s[g.start+3:g.start+5]), atoi(s[g.start+5:g.end])
		if !validSSN(area, grp, serial) || !sc.ssnContext(g.lo, g.end) {
			return 0, false
		}
		return i, true
	}
	if g.len() != 3 || i+2 >= r.n {
		return 0, false
	}
	b, c := r.g[i+1], r.g[i+2]
	sp := b.sep
	if b.len() != 2 || c.len() != 4 || c.sep != sp || b.parens() || c.parens() || !joins(sp) {
		return 0, false
	}
	if sp != sepSpace && (i > 0 && g.sep == sp || i+3 < r.n && r.g[i+3].sep == sp) {
		return 0, false // "2024-123-45-6789": part of something longer
	}
	if !sc.tailOK(r, i+2) || !validSSN(sc.value(g), sc.value(b), sc.value(c)) {
		return 0, false
	}
	if sp == sepDash {
		return i + 2, !sc.adjacentOther(g.lo) // not "claim no. 123-45-6789"
	}
	return i + 2, sc.ssnContext(g.lo, c.end)
}

func validSSN(area, group, serial int) bool {
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

func atoi(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}
