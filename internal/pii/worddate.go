package pii

// wordDate matches a date written in words around the month name
// s[mlo:mhi], as speech-to-text writes a spoken date: "June fifth", "July
// the fourth, 1976", "the twenty-third of May", "fifth of June nineteen
// eighty-five". Dates with digits ("June 5th") are the numeric scanner's.
func wordDate(s string, mlo, mhi int) (lo, hi int, ok bool) {
	// Month first.
	j := mhi
	if j < len(s) && s[j] == ' ' {
		j++
		if hasFold(s, j, "the ") {
			j += 4
		}
		if e, ok := dayWordAt(s, j); ok {
			return mlo, yearWordsAfter(s, e), true
		}
	}
	// Day first: "[the] fifth of June".
	if mlo >= 4 && hasFold(s, mlo-4, " of ") {
		if b, ok := dayWordBefore(s, mlo-4); ok {
			return b, yearWordsAfter(s, mhi), true
		}
	}
	return 0, 0, false
}

// yearWordsAfter returns the end of a year after a date ending at s[e] —
// in digits (", 1985") or in words (" nineteen eighty-five", ", two
// thousand and one") — or e if there is none.
func yearWordsAfter(s string, e int) int {
	if ye, ok := yearAfter(s, e); ok {
		return ye
	}
	j := e
	if j < len(s) && s[j] == ',' {
		j++
	}
	if j >= len(s) || s[j] != ' ' {
		return e
	}
	if ye, ok := spokenYearAt(s, j+1); ok {
		return ye
	}
	return e
}

// spokenYearAt returns the end of a year in words at s[j]: "nineteen
// eighty-five", "nineteen oh five", "twenty twelve", "two thousand and one".
func spokenYearAt(s string, j int) (int, bool) {
	w := wordEnd(s, j)
	switch {
	case isWord(s, j, w, "nineteen"), isWord(s, j, w, "twenty"):
		if w < len(s) && (s[w] == ' ' || s[w] == '-') {
			return underHundredAt(s, w+1)
		}
	case isWord(s, j, w, "two"):
		if !hasFold(s, w, " thousand") || letterAt(s, w+9) {
			return 0, false
		}
		e := w + 9
		k := e
		if hasFold(s, k, " and ") {
			k += 5
		} else if k < len(s) && s[k] == ' ' {
			k++
		} else {
			return e, true
		}
		if ue, ok := underHundredAt(s, k); ok {
			return ue, true
		}
		return e, true
	}
	return 0, false
}

// underHundredAt returns the end of a number under a hundred in words at
// s[j], as the last two digits of a year are said: "eighty-five",
// "eighty five", "twelve", "oh five".
func underHundredAt(s string, j int) (int, bool) {
	w := wordEnd(s, j)
	if isWord(s, j, w, "oh") {
		if w < len(s) && s[w] == ' ' {
			k := w + 1
			if e := wordEnd(s, k); isUnit(s[k:e]) {
				return e, true
			}
		}
		return 0, false
	}
	word := s[j:w]
	if isTeen(word) || isUnit(word) {
		return w, true
	}
	if !isTens(word) {
		return 0, false
	}
	if w < len(s) && (s[w] == '-' || s[w] == ' ') {
		k := w + 1
		if e := wordEnd(s, k); isUnit(s[k:e]) {
			return e, true
		}
	}
	return w, true
}

// dayWordAt returns the end of a day of the month in words at s[j]:
// "fifth", "twenty-first", "thirty first".
func dayWordAt(s string, j int) (int, bool) {
	w := wordEnd(s, j)
	word := s[j:w]
	if ordinalValue(word) > 0 {
		return w, true
	}
	if (equalFold(word, "twenty") || equalFold(word, "thirty")) && w < len(s) && (s[w] == '-' || s[w] == ' ') {
		k := w + 1
		e := wordEnd(s, k)
		if v := ordinalValue(s[k:e]); v > 0 && v < 10 && (equalFold(word, "twenty") || v == 1) {
			return e, true
		}
	}
	return 0, false
}

// dayWordBefore returns the start of a day of the month in words ending at
// s[e] ("fifth", "twenty-third"); a "the" before it stays outside.
func dayWordBefore(s string, e int) (int, bool) {
	b := e
	for b > 0 && isLetter(s[b-1]) && e-b < 12 {
		b--
	}
	if b > 0 && isLetter(s[b-1]) {
		return 0, false
	}
	v := ordinalValue(s[b:e])
	if v == 0 {
		return 0, false
	}
	if v < 10 && b >= 7 && (s[b-1] == '-' || s[b-1] == ' ') {
		t := b - 7
		if (equalFold(s[t:b-1], "twenty") || v == 1 && equalFold(s[t:b-1], "thirty")) && (t == 0 || !isLetter(s[t-1])) {
			return t, true
		}
	}
	return b, true
}

// wordEnd returns the end of the run of letters at s[j].
func wordEnd(s string, j int) int {
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	return j
}

// isWord reports whether s[j:e] is the word w (lower case), ignoring case.
func isWord(s string, j, e int, w string) bool { return e-j == len(w) && hasFold(s, j, w) }

func equalFold(a, w string) bool { return len(a) == len(w) && hasFold(a, 0, w) }

// ordinalValue returns the day an ordinal word names ("first" 1 ...
// "twentieth" 20, "thirtieth" 30), or 0.
func ordinalValue(w string) int {
	if len(w) < 5 || len(w) > 11 {
		return 0
	}
	for i, o := range [...]string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
		"tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
		"eighteenth", "nineteenth", "twentieth"} {
		if equalFold(w, o) {
			return i + 1
		}
	}
	if equalFold(w, "thirtieth") {
		return 30
	}
	return 0
}

func isUnit(w string) bool {
	v, ok := digitWord(w)
	return ok && v != '0' && !equalFold(w, "oh")
}

func isTeen(w string) bool {
	for _, t := range [...]string{"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"} {
		if equalFold(w, t) {
			return true
		}
	}
	return false
}

func isTens(w string) bool {
	for _, t := range [...]string{"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"} {
		if equalFold(w, t) {
			return true
		}
	}
	return false
}
