package logging

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/voicegate/voicegate/internal/pii"
)

// Redacting returns a handler that passes every record to h with the
// personal data that internal/pii finds (phone numbers, e-mail addresses,
// SSNs, card numbers, dates of birth) replaced by placeholders such as
// [PHONE].
//
// Threat: log lines are kept longer, shipped further and read by more
// people than the encrypted call records, and user text reaches them
// without anyone deciding it should — an error that quotes a URL whose
// query holds a tool's arguments, a panic value, a store error echoing a
// value. Redacting in the handler covers every log call, including those
// written later by someone who did not think of it.
//
// What is redacted: the message; every attribute value that is a string,
// an error (its Error text), a fmt.Stringer (its String text), a []byte or
// a value of a string kind, at any depth of groups; LogValuer values after
// they are resolved; attributes given to WithAttrs, once, when the handler
// is derived. A value with a finding is replaced by its redacted text (an
// error or Stringer then logs as a string). Text with percent-escapes or
// '+' (a URL's query, as an HTTP client's error quotes a GET tool's
// arguments) is also read decoded, and logged decoded when that shows
// personal data. Numbers, booleans, durations and times are passed through
// as they are. Attribute keys and group names are not redacted (they are
// written by the code, not the caller), nor other values of kind Any
// (structs, maps, slices), which the handler below encodes as it likes.
//
// Redaction is pattern based: names, addresses and free-text medical or
// personal details are not found (see package pii). A record with nothing
// to redact costs one scan of each string and no allocation.
func Redacting(h slog.Handler) slog.Handler { return &redacting{next: h} }

type redacting struct {
	next slog.Handler
}

var _ slog.Handler = (*redacting)(nil)

func (h *redacting) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	if red, changed := redactAttrs(attrs); changed {
		attrs = red
	}
	return &redacting{next: h.next.WithAttrs(attrs)}
}

func (h *redacting) WithGroup(name string) slog.Handler {
	return &redacting{next: h.next.WithGroup(name)}
}

// Handle passes r on as it is when nothing in it needs redacting, and
// otherwise a copy with the redacted message and attributes.
func (h *redacting) Handle(ctx context.Context, r slog.Record) error {
	msg, dirty := redactString(r.Message)
	// attrs stays nil until an attribute changes: then it gets the ones
	// before it, unchanged, and every one after it.
	var attrs []slog.Attr
	n := 0
	r.Attrs(func(a slog.Attr) bool {
		ra, changed := redactAttr(a)
		if changed && attrs == nil {
			attrs = make([]slog.Attr, 0, r.NumAttrs())
			r.Attrs(func(b slog.Attr) bool {
				if len(attrs) == n {
					return false
				}
				attrs = append(attrs, b)
				return true
			})
		}
		if attrs != nil {
			attrs = append(attrs, ra)
		}
		n++
		return true
	})
	if !dirty && attrs == nil {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	if attrs != nil {
		out.AddAttrs(attrs...)
	} else {
		r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	}
	return h.next.Handle(ctx, out)
}

// redactAttrs returns attrs redacted, and whether any changed (a new
// slice then; attrs is never written to).
func redactAttrs(attrs []slog.Attr) ([]slog.Attr, bool) {
	var out []slog.Attr
	for i, a := range attrs {
		ra, changed := redactAttr(a)
		if changed && out == nil {
			out = make([]slog.Attr, i, len(attrs))
			copy(out, attrs[:i])
		}
		if out != nil {
			out = append(out, ra)
		}
	}
	if out == nil {
		return attrs, false
	}
	return out, true
}

func redactAttr(a slog.Attr) (slog.Attr, bool) {
	v, changed := redactValue(a.Value)
	if changed {
		a.Value = v
	}
	return a, changed
}

// redactValue returns v redacted, and whether it changed. A LogValuer
// counts as changed once resolved, so that the handler below logs the
// value that was checked instead of asking for it again.
func redactValue(v slog.Value) (slog.Value, bool) {
	resolved := false
	if v.Kind() == slog.KindLogValuer {
		v, resolved = v.Resolve(), true
	}
	switch v.Kind() {
	case slog.KindString:
		if s, changed := redactString(v.String()); changed {
			return slog.StringValue(s), true
		}
	case slog.KindGroup:
		if attrs, changed := redactAttrs(v.Group()); changed {
			return slog.GroupValue(attrs...), true
		}
	case slog.KindAny:
		if s, ok := text(v.Any()); ok {
			if red, changed := redactString(s); changed {
				return slog.StringValue(red), true
			}
		}
	}
	return v, resolved
}

// text returns the text a value of kind Any logs as, when it is
// string-like: an error's Error, a []byte, a Stringer's String, a value of
// a string kind. A nil pointer whose method panics is not text: it is left
// to the handler below, which logs it as slog does ("<nil>", or null).
// Another panic is logged as slog logs it, "!PANIC: " and the panic value,
// and that is redacted too.
func text(x any) (s string, ok bool) {
	if x == nil {
		return "", false
	}
	defer func() {
		if r := recover(); r != nil {
			if v := reflect.ValueOf(x); v.Kind() == reflect.Pointer && v.IsNil() {
				s, ok = "", false
				return
			}
			s, ok = fmt.Sprintf("!PANIC: %v", r), true
		}
	}()
	switch x := x.(type) {
	case error:
		return x.Error(), true
	case []byte:
		return string(x), true
	case fmt.Stringer:
		return x.String(), true
	}
	switch v := reflect.ValueOf(x); {
	case v.Kind() == reflect.String:
		return v.String(), true
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		return string(v.Bytes()), true
	}
	return "", false
}

// redactString returns s with its personal data replaced, and whether
// anything was found. Text with percent-escapes is read decoded as well; if
// the decoded text has findings, it is what is returned, redacted.
func redactString(s string) (string, bool) {
	changed := false
	if fs := find(s); len(fs) > 0 {
		s, changed = pii.Replace(s, fs), true
	}
	if d, ok := unescape(s); ok {
		if fs := find(d); len(fs) > 0 {
			return pii.Replace(d, fs), true
		}
	}
	return s, changed
}

// find is pii.Find without the e-mail addresses that are a URL's
// user@host ("postgres://voicegate:REDACTED@db.internal:5432/vg", as the
// database line logs it): that is the account and server voicegate
// connects to, not a person's address, and the operator needs the host.
func find(s string) []pii.Finding {
	fs := pii.Find(s)
	kept := fs[:0]
	for _, f := range fs {
		if f.Kind != pii.Email || !inAuthority(s, f.Start) {
			kept = append(kept, f)
		}
	}
	return kept
}

// inAuthority reports whether s[i] is in the authority of a URL: after a
// "scheme://" with no '/', space or quote between.
func inAuthority(s string, i int) bool {
	j := strings.LastIndex(s[:i], "://")
	if j < 1 || !isLetter(s[j-1]) {
		return false
	}
	return !strings.ContainsAny(s[j+3:i], "/ \t\n\"'<>")
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// maxUnescape bounds how many times escaped text is decoded (a URL in a
// query parameter is escaped twice).
const maxUnescape = 3

// unescape decodes s as a URL query is decoded ("%2B" is "+", "+" is a
// space), leaving a '%' that does not start an escape as it is; then
// decodes the escapes left, while there are some (at most maxUnescape
// rounds in all). It reports false, without allocating, when s has
// neither an escape nor a '+'.
func unescape(s string) (string, bool) {
	if !hasEscape(s) && strings.IndexByte(s, '+') < 0 {
		return "", false
	}
	for round := 0; round < maxUnescape && (round == 0 || hasEscape(s)); round++ {
		var b strings.Builder
		b.Grow(len(s))
		for j := 0; j < len(s); j++ {
			switch c := s[j]; {
			case c == '%' && j+2 < len(s) && isHex(s[j+1]) && isHex(s[j+2]):
				b.WriteByte(unhex(s[j+1])<<4 | unhex(s[j+2]))
				j += 2
			case c == '+' && round == 0:
				// Only in the first round: a '+' decoded from "%2B" is a '+'.
				b.WriteByte(' ')
			default:
				b.WriteByte(c)
			}
		}
		s = b.String()
	}
	return s, true
}

// hasEscape reports whether s has a '%' followed by two hex digits.
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
