package pii

import (
	"bytes"
	"encoding/json"
	"strings"
)

// RedactJSON returns a JSON document with the personal data in its values
// replaced by placeholders: every string, every member name, and every
// number that is personal data on its own (a card number sent as a JSON number becomes
// the string "[CARD]"). Each value is read with its member name in front
// of it ("dateOfBirth: 1985-03-12"), so that a date under a birth-date
// name is found as a date of birth. The elements of an array are read in
// order, as the lines of a conversation (see Scanner): the strings of an
// array, or in an array of objects the values of each member name ("a
// message" after "a message"), so that a transcript's turns
// ([{"role": "bot", "message": "What's your date of birth?"}, {"role":
// "user", "message": "March 3rd 1990"}]) carry the question to its answer.
// Object members come out sorted by name. What is not JSON is redacted as
// text.
func RedactJSON(doc []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return []byte(Redact(string(doc)))
	}
	v = redactValue(v, "", nil)
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return []byte(Redact(string(doc)))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// sequence holds the Scanners of the elements of one array: one for its
// strings and numbers (name ""), one per member name of its objects.
type sequence struct {
	names    []string
	scanners []*Scanner
}

func (q *sequence) scanner(name string) *Scanner {
	for i, n := range q.names {
		if n == name {
			return q.scanners[i]
		}
	}
	z := &Scanner{anyLabel: true} // the member name is each value's label
	q.names, q.scanners = append(q.names, name), append(q.scanners, z)
	return z
}

// redactValue redacts v, read after its member name, with z's context
// (z may be nil).
func redactValue(v any, name string, z *Scanner) any {
	switch t := v.(type) {
	case string:
		return redactNamed(t, name, z)
	case json.Number:
		if r := redactNamed(string(t), name, z); r != string(t) {
			return r
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			// A member name can be personal data too ({"+14155550123": ...}).
			out[Redact(k)] = redactValue(e, k, nil)
		}
		return out
	case []any:
		var q sequence
		for i, e := range t {
			if m, ok := e.(map[string]any); ok {
				out := make(map[string]any, len(m))
				for k, me := range m {
					out[Redact(k)] = redactValue(me, k, q.scanner(k))
				}
				t[i] = out
				continue
			}
			t[i] = redactValue(e, name, q.scanner(""))
		}
	}
	return v
}

// redactNamed redacts s read after its member name, as words, with z's
// context (z may be nil).
func redactNamed(s, name string, z *Scanner) string {
	find := AppendFind
	if z != nil {
		find = z.AppendFind
	}
	if name == "" {
		return Replace(s, find(nil, s))
	}
	prefix := words(name) + ": "
	fs := find(nil, prefix+s)
	var in []Finding
	for _, f := range fs {
		if f.End <= len(prefix) {
			continue // in the name itself
		}
		f.Start, f.End = max(f.Start-len(prefix), 0), f.End-len(prefix)
		in = append(in, f)
	}
	return Replace(s, in)
}

// words writes a member name as words: "dateOfBirth" and "date_of_birth"
// become "date of birth".
func words(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.':
			b.WriteByte(' ')
		case 'A' <= c && c <= 'Z':
			if i > 0 && !('A' <= name[i-1] && name[i-1] <= 'Z') {
				b.WriteByte(' ')
			}
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
