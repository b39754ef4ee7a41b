package pii

// findSpoken finds what speech-to-text writes in words: dates of birth
// ("born on the fifth of June") and numbers read out digit by digit: "four one five, five five five, zero one nine nine",
// "double five". Seven digits or more make a candidate, classified like a
// written number: nine with "SSN" before them are an SSN; 13 to 19 that
// pass the card checks are a card; a phone number is ten or eleven of them,
// or seven to fifteen after a phone word ("call me at…").
func (sc *scanner) findSpoken() {
	s := sc.s
	var d [20]byte
	nd, lo, hi := 0, -1, -1
	repeat := 0 // "double" or "triple" before the next digit
	flush := func() {
		if nd >= 7 && nd <= len(d) {
			sc.spokenNumber(lo, hi, d[:nd])
		}
		nd, lo, repeat = 0, -1, 0
	}
	for i := 0; i < len(s); {
		if !isLetter(s[i]) {
			// Between two digits: spaces, commas, dashes only.
			if lo >= 0 && s[i] != ' ' && s[i] != ',' && s[i] != '-' || lo >= 0 && i-hi > 3 {
				flush()
			}
			i++
			continue
		}
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if i > 0 && isAlnum(s[i-1]) || j < len(s) && isDigit(s[j]) {
			flush()
			i = j
			continue
		}
		w := s[i:j]
		if r := repeatWord(w); r > 0 && repeat == 0 {
			if lo < 0 {
				lo = i
			}
			repeat, hi = r, j
			i = j
			continue
		}
		v, ok := digitWord(w)
		if !ok {
			flush()
			if isMonthName(w) {
				if lo, hi, ok := wordDate(s, i, j); ok {
					sc.spokenDate(lo, hi)
					if hi > j {
						j = hi
					}
				}
			}
			i = j
			continue
		}
		if lo < 0 {
			lo = i
		}
		times := 1
		if repeat > 0 {
			times = repeat
		}
		for t := 0; t < times; t++ {
			if nd < len(d) {
				d[nd] = v
			}
			nd++
		}
		repeat, hi = 0, j
		i = j
	}
	flush()
}

// spokenDate reports the date in words s[lo:hi] as a date of birth if a
// birth word stands next to it.
func (sc *scanner) spokenDate(lo, hi int) {
	if sc.clear(lo, hi) && sc.isBirth(lo, hi) {
		sc.add(DOB, lo, hi)
		sc.sawDate(lo)
	}
}

// clear reports whether s[lo:hi] overlaps no finding, and sets the barrier
// of the context window to the end of the finding before it, as the
// numeric scanner does.
func (sc *scanner) clear(lo, hi int) bool {
	sc.barrier = 0
	for _, f := range sc.out[sc.base:] {
		if lo < f.End && f.Start < hi {
			return false
		}
		if f.End <= lo && f.End > sc.barrier {
			sc.barrier = f.End
		}
	}
	return true
}

// spokenNumber classifies the digits d read out in s[lo:hi].
func (sc *scanner) spokenNumber(lo, hi int, d []byte) {
	if !sc.clear(lo, hi) {
		return
	}
	t := sc.topicBefore(lo, topicWindow)
	var k Kind
	switch n := len(d); {
	case t == topicOther:
		return
	case n == 9 && (t == topicSSN || t == topicNone && (sc.ssnWordAfter(hi) || sc.answersSSN(lo))):
		if !validSSN(atoi(string(d[:3])), atoi(string(d[3:5])), atoi(string(d[5:]))) {
			return
		}
		k = SSN
	case n >= 13 && validCard(d):
		k = Card
	case n <= 15 && (t == topicPhone || t == topicNone && (n == 10 || n == 11)):
		k = Phone
	default:
		return
	}
	sc.add(k, lo, hi)
}

// digitWord returns the digit a word names: "zero" or "oh" to "nine".
func digitWord(w string) (byte, bool) {
	if len(w) < 2 || len(w) > 5 {
		return 0, false
	}
	switch lower(w[0]) { // most words are not digits: decide on the first letter
	case 'z', 'o', 't', 'f', 's', 'e', 'n':
	default:
		return 0, false
	}
	var buf [5]byte
	for i := 0; i < len(w); i++ {
		buf[i] = lower(w[i])
	}
	switch string(buf[:len(w)]) {
	case "zero", "oh":
		return '0', true
	case "one":
		return '1', true
	case "two":
		return '2', true
	case "three":
		return '3', true
	case "four":
		return '4', true
	case "five":
		return '5', true
	case "six":
		return '6', true
	case "seven":
		return '7', true
	case "eight":
		return '8', true
	case "nine":
		return '9', true
	}
	return 0, false
}

// repeatWord returns 2 for "double", 3 for "triple", else 0.
func repeatWord(w string) int {
	switch {
	case len(w) == 6 && hasFold(w, 0, "double"):
		return 2
	case len(w) == 6 && hasFold(w, 0, "triple"):
		return 3
	}
	return 0
}
