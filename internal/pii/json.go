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
// name is found as a date of birth. Object members come out sorted by
// name. What is not JSON is redacted as text.
func RedactJSON(doc []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return []byte(Redact(string(doc)))
	}
	v = redactValue(v, "")
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return []byte(Redact(string(doc)))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func redactValue(v any, name string) any {
	switch t := v.(type) {
	case string:
		return redactNamed(t, name)
	case json.Number:
		if r := redactNamed(string(t), name); r != string(t) {
			return r
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			// A member name can be personal data too ({"+14155550123": ...}).
			out[Redact(k)] = redactValue(e, k)
		}
		return out
	case []any:
		for i, e := range t {
			t[i] = redactValue(e, name)
		}
	}
	return v
}

// redactNamed redacts s read after its member name, as words.
func redactNamed(s, name string) string {
	if name == "" {
		return Redact(s)
	}
	prefix := words(name) + ": "
	fs := Find(prefix + s)
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
