package pii

import "strings"

// Character classes, ASCII only: the digits and separators of the numbers
// found are ASCII, and a byte of a multi-byte UTF-8 character is never one
// of them.

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return letters[c] }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }
func isUpper(c byte) bool  { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool  { return 'a' <= c && c <= 'z' }
func lower(c byte) byte {
	if isUpper(c) {
		return c | 0x20
	}
	return c
}

// letters marks the ASCII letters.
var letters = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// isLocal reports whether c may appear in the local part of an address.
func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

// Context windows: how far before a candidate (in bytes) a word that says
// what it is may stand.
const (
	topicWindow = 40 // "the best number to reach me on is 555 1234"
	negWindow   = 20 // "Order #", "invoice no."
)

// topic is what the words before a number say it is.
type topic uint8

const (
	topicNone  topic = iota
	topicPhone       // call, phone, mobile, text, …
	topicSSN         // SSN, social security
	topicCard        // card, visa, …
	topicOther       // order, invoice, tracking, account, … : not personal data we redact
)

// topicBefore classifies the words in the window before s[lo]: the
// right-most keyword decides. "number" and "no" only say "a number
// follows": the word before them decides ("order number" is an order,
// "phone number" a phone, "my number" or "the best number" a phone,
// "referral number" none of ours).
func (sc *scanner) topicBefore(lo, window int) topic {
	ws := sc.windowStart(lo, window)
	weak := false
	for k, n := lo, 0; n < 12; n++ {
		b, e := sc.prevWord(k, ws)
		if b < 0 {
			break
		}
		k = b
		w := sc.s[b:e]
		t := wordTopic(w)
		if weak {
			switch {
			case t == topicNumber:
				continue
			case t != topicNone:
				return t
			case isDeterminer(w):
				return topicPhone
			}
			return topicNone
		}
		switch t {
		case topicNone:
		case topicNumber:
			weak = true
		default:
			return t
		}
	}
	if weak {
		return topicPhone // "Number: 555 1234"
	}
	return topicNone
}

// adjacentOther reports whether the word just before s[lo] — past
// "number", "no", "is", "it's" — says that what follows is not personal data:
// "Order #482-193-7750", "invoice no. 123-45-6789", "tracking number is …",
// "NHS number? It's 630 827 1659".
func (sc *scanner) adjacentOther(lo int) bool {
	ws := sc.windowStart(lo, negWindow)
	for k, n := lo, 0; n < 4; n++ {
		b, e := sc.prevWord(k, ws)
		if b < 0 {
			return false
		}
		k = b
		switch t := wordTopic(sc.s[b:e]); {
		case t == topicNumber, isFiller(sc.s[b:e]):
			continue
		default:
			return t == topicOther
		}
	}
	return false
}

// prevWord returns the word that ends before s[k], no earlier than ws:
// letters only, split at camelCase humps ("callbackNumber",
// "customerSSN"); b < 0 if there is none, or only part of one.
func (sc *scanner) prevWord(k, ws int) (b, e int) {
	s := sc.s
	e = k
	for e > ws && !isLetter(s[e-1]) {
		e--
	}
	if e == ws {
		return -1, -1
	}
	b = e - 1
	for b > ws && isLetter(s[b-1]) && !(isLower(s[b-1]) && isUpper(s[b])) {
		b--
	}
	if b == ws && ws > 0 && isLetter(s[ws-1]) && !(isLower(s[ws-1]) && isUpper(s[ws])) {
		return -1, -1 // cut by the window
	}
	return b, e
}

// isDeterminer reports whether w, before "number", makes it a phone
// number: "my number", "the best number", "a daytime number".
func isDeterminer(w string) bool {
	if len(w) > 11 {
		return false
	}
	var buf [11]byte
	for i := 0; i < len(w); i++ {
		buf[i] = lower(w[i])
	}
	switch string(buf[:len(w)]) {
	case "my", "your", "his", "her", "their", "our", "its", "the", "a", "this", "that", "best", "good", "same",
		"new", "old", "other", "another", "alternate", "alternative", "different", "direct", "home", "work",
		"office", "daytime", "evening", "main", "emergency", "backup", "personal", "primary", "secondary", "s":
		return true
	}
	return false
}

// isFiller reports whether w may stand between a keyword and its number
// ("order number is", "invoice no.").
func isFiller(w string) bool {
	if len(w) > 3 {
		return false
	}
	var buf [3]byte
	for i := 0; i < len(w); i++ {
		buf[i] = lower(w[i])
	}
	switch string(buf[:len(w)]) {
	case "is", "was", "are", "it", "s", "of":
		return true
	}
	return false
}

// topicNumber is what wordTopic returns for "number" and its kin.
const topicNumber = topicOther + 1

// wordTopic returns the topic a single word announces.
func wordTopic(w string) topic {
	if len(w) < 2 || len(w) > 16 {
		return topicNone
	}
	var buf [16]byte
	for i := 0; i < len(w); i++ {
		buf[i] = lower(w[i])
	}
	b := buf[:len(w)]
	if len(b) > 3 && b[len(b)-1] == 's' && b[len(b)-2] != 's' { // plurals: "phones", "orders"
		b = b[:len(b)-1]
	}
	switch string(b) {
	case "number", "no", "num", "nr", "nbr", "digit":
		return topicNumber
	case "phone", "call", "calling", "called", "caller", "callback", "cell", "cellphone", "mobile", "mob",
		"tel", "telephone", "fax", "text", "texting", "texted", "sms", "reach", "reached", "dial", "dialed", "ring",
		"contact", "voicemail", "whatsapp", "landline", "ph", "hotline", "pager", "msisdn", "ani", "cli", "callerid":
		return topicPhone
	case "ssn", "social", "security", "ss", "taxpayer", "itin", "tin":
		return topicSSN
	case "card", "visa", "mastercard", "amex", "discover", "credit", "debit", "pan", "cc", "maestro":
		return topicCard
	case "order", "account", "acct", "invoice", "inv", "ref", "reference", "tracking", "track", "shipment",
		"parcel", "package", "confirmation", "conf", "policy", "member", "membership", "claim", "case", "ticket",
		"booking", "reservation", "routing", "aba", "iban", "swift", "serial", "id", "pin", "transaction", "txn",
		"po", "sku", "item", "part", "model", "zip", "postal", "postcode", "flight", "room", "mrn", "record",
		"receipt", "loan", "customer", "patient", "employee", "badge", "license", "licence", "plate", "vin",
		"isbn", "imei", "iccid", "version", "build", "code", "qty", "quantity", "amount", "total", "balance",
		"price", "cost", "usd", "eur", "gbp", "dollar", "point", "mile", "batch", "lot", "npi", "dea", "group",
		"rx", "prescription", "refill", "appointment", "session", "uuid", "guid", "hash", "ip", "port", "gate",
		"seat", "unit", "suite", "apt", "building", "extension", "ext",
		// National ids that a 3-3-4 or 3-3-3 grouping makes look like a
		// phone number: the UK's NHS number, Canada's social insurance
		// number, Scotland's CHI number, Ireland's PPSN, Australia's
		// Medicare and tax file numbers; and other ids.
		"nhs", "sin", "chi", "ppsn", "pps", "medicare", "medicaid", "tfn", "passport", "nino", "ein", "fein":
		return topicOther
	}
	return topicNone
}

// windowStart returns where the context window of length w before s[lo]
// starts: never before the end of the previous finding or date (a keyword
// there belongs to it), nor before a placeholder an earlier redaction left
// (so that redacting redacted text changes nothing).
func (sc *scanner) windowStart(lo, w int) int {
	ws := lo - w
	if ws < sc.barrier {
		ws = sc.barrier
	}
	if ws < 0 {
		ws = 0
	}
	for k := lo - 1; k >= ws; k-- {
		if sc.s[k] == ']' && endsWithPlaceholder(sc.s[:k+1]) {
			return k + 1
		}
	}
	return ws
}

// startsWithPlaceholder reports whether s starts with a placeholder.
func startsWithPlaceholder(s string) bool {
	for _, k := range [...]Kind{Phone, Email, SSN, Card, DOB} {
		if strings.HasPrefix(s, k.Placeholder()) {
			return true
		}
	}
	return false
}

// endsWithPlaceholder reports whether s ends with a placeholder.
func endsWithPlaceholder(s string) bool {
	for _, k := range [...]Kind{Phone, Email, SSN, Card, DOB} {
		if strings.HasSuffix(s, k.Placeholder()) {
			return true
		}
	}
	return false
}

// Birth words. A date is a date of birth when one of these stands just
// before it ("DOB: 03/14/1985", "born on March 14, 1985", "b. 1985-03-14")
// or just after it ("03/14/1985 (DOB)", "14 March 1985 is my birthday").
const (
	birthBefore = 48 // "date of birth, as it appears on the card, is 03/14/1985"
	birthAfter  = 28 // "03/14/1985, which is my birthday"
)

// birthWordBefore reports whether a birth word stands in the window before
// s[lo], with nothing between it and the date that ends the sentence.
func (sc *scanner) birthWordBefore(lo int) bool {
	s := sc.s
	ws := sc.windowStart(lo, birthBefore)
	kwEnd := -1
	for i := ws; i < lo; i++ {
		if e := birthWordAt(s, i); e > 0 && e <= lo {
			kwEnd = e
		}
	}
	if kwEnd < 0 {
		return false
	}
	for i := kwEnd; i < lo; i++ {
		switch c := s[i]; c {
		case ';', '\n', '|':
			return false
		case '?':
			// "Date of birth? 03/14/1985": a question, then its answer;
			// but not a question about something else in between.
			if i+1 < lo && s[i+1] == ' ' && strings.TrimLeft(s[kwEnd:i], " :") != "" {
				return false
			}
		case '.', '!':
			if i+1 < lo && s[i+1] == ' ' {
				return false
			}
		default:
			if isDigit(c) {
				return false // "born in 1998 and went public on 08/19/2004": the word is the year's
			}
		}
	}
	return true
}

// birthWordAfter reports whether a birth word follows s[hi] closely: only
// spaces, brackets or a few words ("is my", "which is the") between, and
// no number right after it ("on 10/15, DOB is 10/15/1956": that birth word
// is the next date's).
func (sc *scanner) birthWordAfter(hi int) bool {
	s := sc.s
	end := hi + birthAfter
	if end > len(s) {
		end = len(s)
	}
	for i := hi; i < end; i++ {
		c := s[i]
		if isLetter(c) {
			if e := birthWordAt(s, i); e > 0 {
				for j := e; j < len(s) && j < e+12; j++ {
					if isDigit(s[j]) || s[j] == '[' && startsWithPlaceholder(s[j:]) {
						return false
					}
				}
				return true
			}
			continue
		}
		switch c {
		case ' ', '(', '[', '-', '\'':
		default:
			return false
		}
	}
	return false
}

// birthWordAt returns the end of a birth word starting at s[i] (with its
// trailing '.' for abbreviations), or 0.
func birthWordAt(s string, i int) int {
	if c := s[i] | 0x20; c != 'b' && c != 'd' || !wordStart(s, i) {
		return 0
	}
	// Not a placeholder: "[DOB]" was a finding, not a keyword.
	if i > 0 && s[i-1] == '[' {
		return 0
	}
	switch lower(s[i]) {
	case 'b':
		if hasFold(s, i, "birth") { // birth, birthday, birthdate, birth_date
			e := endAbbrev(s, i+5)
			if isCelebration(s, e) {
				return 0 // "birthday party on 12/14": an event, not a birth
			}
			return e
		}
		if hasFold(s, i, "born") && !letterAt(s, i+4) {
			return i + 4
		}
		for _, w := range [...]string{"bday", "b-day", "b'day"} {
			if hasFold(s, i, w) && !letterAt(s, i+len(w)) {
				return i + len(w)
			}
		}
		// "b." (born) before a space or a digit; not "b.c.".
		if i+1 < len(s) && s[i+1] == '.' && (i+2 == len(s) || s[i+2] == ' ' || isDigit(s[i+2])) {
			return i + 2
		}
	case 'd':
		if hasFold(s, i, "dob") && !(i+3 < len(s) && isLower(s[i+3])) {
			return endAbbrev(s, i+3)
		}
		if hasFold(s, i, "d.o.b") {
			return endAbbrev(s, i+5)
		}
	}
	return 0
}

// endAbbrev returns the end of the word ending at j, with a trailing '.'.
func endAbbrev(s string, j int) int {
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	if j < len(s) && s[j] == '.' {
		j++
	}
	return j
}

// wordStart reports whether a word starts at s[i]: after a non-letter, or
// at a camelCase hump ("patientDob").
func wordStart(s string, i int) bool {
	return i == 0 || !isLetter(s[i-1]) || (isLower(s[i-1]) && isUpper(s[i]))
}

func letterAt(s string, i int) bool { return i < len(s) && isLetter(s[i]) }

// hasFold reports whether s[i:] starts with w (ASCII lower case), ignoring case.
func hasFold(s string, i int, w string) bool {
	if len(s)-i < len(w) {
		return false
	}
	for k := 0; k < len(w); k++ {
		if lower(s[i+k]) != w[k] {
			return false
		}
	}
	return true
}

// isCelebration reports whether the word after a birth word at s[e] makes
// it an event: "birthday party", "birthday cake".
func isCelebration(s string, e int) bool {
	if e >= len(s) || s[e] != ' ' {
		return false
	}
	for _, w := range [...]string{"party", "parties", "cake", "card", "gift", "present", "dinner", "lunch", "celebration", "bash", "trip"} {
		if hasFold(s, e+1, w) && !letterAt(s, e+1+len(w)) {
			return true
		}
	}
	return false
}

// ssnAfter is how far after a number (in bytes) a social-security word
// may stand: "733 19 4405 — that's the caller's SSN".
const ssnAfter = 40

// ssnContext reports whether the words around the nine digits s[lo:hi]
// say they are an SSN: a social-security word before them (the right-most
// keyword decides, as for the other kinds), or, when the word just before
// does not say they are something else ("order no."), one after them in
// the same sentence ("455 21 3391 (social security)", "…, that's my SSN"),
// or a question for one on the line before ("AI: And your social security
// number?").
func (sc *scanner) ssnContext(lo, hi int) bool {
	if sc.topicBefore(lo, topicWindow) == topicSSN {
		return true
	}
	if sc.adjacentOther(lo) {
		return false
	}
	return sc.ssnWordAfter(hi) || sc.answersSSN(lo)
}

// ssnWordAfter reports whether a social-security word follows s[hi] in the
// same sentence, within ssnAfter bytes and six words, with no keyword of
// another kind between ("555 12 3456 for the order, SSN …" is not): "(social
// security)", ", that's my SSN", "is my social", `", "type": "SSN"`. A
// possessive is not a keyword ("the caller's SSN"). A number right after
// the word takes it ("123 45 6789, SSN 987-65-4321": the word is the
// second number's).
func (sc *scanner) ssnWordAfter(hi int) bool {
	s := sc.s
	end := min(hi+ssnAfter, len(s))
	words := 0
	for i := hi; i < end; {
		c := s[i]
		if isLetter(c) {
			j := wordEnd(s, i)
			if i > 0 && isAlnum(s[i-1]) {
				return false // "…6789ab": glued on
			}
			if e := ssnWordAt(s, i, j); e > 0 {
				for k := e; k < len(s) && k < e+12 && s[k] != '\n'; k++ {
					if isDigit(s[k]) || s[k] == '[' && startsWithPlaceholder(s[k:]) {
						return false
					}
				}
				return true
			}
			possessive := j+1 < len(s) && s[j] == '\'' && lower(s[j+1]) == 's' && !letterAt(s, j+2) ||
				hasFold(s, j, "\u2019s") && !letterAt(s, j+4)
			if t := wordTopic(s[i:j]); t != topicNone && t != topicNumber && !possessive {
				return false
			}
			if words++; words > 6 {
				return false
			}
			i = j
			continue
		}
		switch c {
		case ' ', ',', '(', ')', '"', '\'', ':', '=', '-', '_':
			i++
		case 0xE2: // an en or em dash, a right single quote
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0x93 || s[i+2] == 0x94 || s[i+2] == 0x99) {
				i += 3
				continue
			}
			return false
		default:
			return false
		}
	}
	return false
}
