package pii

// card matches a payment card number at group i: 13 to 19 digits, written
// together or in groups joined by spaces or dashes ("4111 1111 1111 1111",
// "3782-822463-10005"), that pass the Luhn check and start with an issuer
// prefix valid for their length. A reference number of the same shape
// fails one or the other nine times in ten, and a run of more digits
// ("9400 1000 0000 0000 0000 00", a parcel) is not cut into a card.
func (sc *scanner) card(r *run, i int) (last int, ok bool) {
	s := sc.s
	g := r.g[i]
	if g.parens() || i > 0 && g.sep != sepSpace {
		return 0, false
	}
	var d [19]byte
	if g.len() >= 13 {
		if g.len() > 19 || i+1 < r.n && r.g[i+1].sep != sepSpace || !sc.tailOK(r, i) {
			return 0, false
		}
		n := copy(d[:], s[g.start:g.end])
		return i, validCard(d[:n]) && sc.topicBefore(g.start, negWindow) != topicOther
	}
	if i+1 >= r.n {
		return 0, false
	}
	sp := r.g[i+1].sep
	if sp != sepSpace && sp != sepDash {
		return 0, false
	}
	var sizes [maxGroups]uint8
	nd, best := 0, -1
	for k := i; k < r.n; k++ {
		h := r.g[k]
		if k > i && h.sep != sp || h.parens() || nd+h.len() > 19 {
			break
		}
		nd += copy(d[nd:], s[h.start:h.end])
		sizes[k-i] = uint8(h.len())
		if nd < 13 {
			continue
		}
		// The run ends here, or it is cut after a usual grouping
		// ("4111 1111 1111 1111 12/27": the expiry follows).
		maximal := k+1 == r.n || r.g[k+1].sep != sp && r.g[k+1].sep == sepSpace
		if !maximal && !(sp == sepSpace && r.g[k+1].sep == sepSpace && usualGrouping(sizes[:k-i+1])) {
			continue
		}
		if sc.tailOK(r, k) && validCard(d[:nd]) {
			best = k
		}
	}
	if best < 0 || sc.topicBefore(g.start, negWindow) == topicOther {
		return 0, false
	}
	return best, true
}

// usualGrouping reports whether sizes is how cards are printed: 4-4-4-4,
// 4-4-4-4-3, 4-6-5 (American Express), 4-6-4 (Diners Club).
func usualGrouping(sizes []uint8) bool {
	switch string(sizes) {
	case "\x04\x04\x04\x04", "\x04\x04\x04\x04\x03", "\x04\x06\x05", "\x04\x06\x04":
		return true
	}
	return false
}

// validCard reports whether the digits d pass the Luhn check and start
// with an issuer identification number that issues cards of this length.
func validCard(d []byte) bool {
	n := len(d)
	if n < 13 || n > 19 {
		return false
	}
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	var lenOK bool
	switch {
	case d[0] == '4': // Visa
		lenOK = n == 13 || n == 16 || n == 19
	case p2 == 34 || p2 == 37: // American Express
		lenOK = n == 15
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720, p4 >= 2200 && p4 <= 2204: // Mastercard, Mir
		lenOK = n == 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		lenOK = n >= 14
	case p4 >= 3528 && p4 <= 3589: // JCB
		lenOK = n >= 16
	case d[0] == '6': // Discover, UnionPay, RuPay, Maestro
		lenOK = n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 58: // Maestro
		lenOK = true
	}
	return lenOK && luhn(d)
}

// luhn reports whether the digits d pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum, double := 0, false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
