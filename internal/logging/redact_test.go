package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Personal data in the tests: each is found by internal/pii.
const (
	phone = "+15557654321"
	email = "jane.doe@example.com"
	card  = "4111111111111111"
)

// stringer logs through its String method (the JSON handler would encode
// the struct itself, {}).
type stringer struct{ s string }

func (s stringer) String() string { return s.s }

// ptrStringer dereferences its receiver: a nil one panics.
type ptrStringer struct{ s string }

func (p *ptrStringer) String() string { return p.s }

// ptrError dereferences its receiver: a nil one panics.
type ptrError struct{ msg string }

func (e *ptrError) Error() string { return e.msg }

// panicky panics with personal data in the panic value.
type panicky struct{}

func (panicky) String() string { panic("cannot print " + phone) }

// note is a string type: slog gives it kind Any.
type note string

// valuer resolves to its text.
type valuer string

func (v valuer) LogValue() slog.Value { return slog.StringValue(string(v)) }

// record runs log against a JSON handler writing to a buffer, wrapped
// with Redacting when redact is set, and returns the line without its time.
func record(redact bool, log func(l *slog.Logger)) string {
	var buf bytes.Buffer
	var h slog.Handler = slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	if redact {
		h = Redacting(h)
	}
	log(slog.New(h))
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestRedacting(t *testing.T) {
	when := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		// want is the redacted line; empty: the line is exactly what the
		// JSON handler writes without the wrapper.
		want string
	}{
		{"message", func(l *slog.Logger) { l.Info("caller said call me at " + phone) },
			`{"level":"INFO","msg":"caller said call me at [PHONE]"}`},
		{"string attr", func(l *slog.Logger) { l.Info("m", "note", "write to "+email, "id", "c1") },
			`{"level":"INFO","msg":"m","note":"write to [EMAIL]","id":"c1"}`},
		{"error attr", func(l *slog.Logger) { l.Error("m", "err", fmt.Errorf("lookup %s: not found", phone)) },
			`{"level":"ERROR","msg":"m","err":"lookup [PHONE]: not found"}`},
		{"url error, escaped query", func(l *slog.Logger) {
			l.Info("m", "err", &url.Error{Op: "Get", URL: "http://api/x?phone=%2B15557654321&email=jane.doe%40example.com&card=4111+1111+1111+1111", Err: errors.New("connection refused")})
		}, `{"level":"INFO","msg":"m","err":"Get \"http://api/x?phone=[PHONE]&email=[EMAIL]&card=[CARD]\": connection refused"}`},
		{"URL user@host kept", func(l *slog.Logger) {
			l.Info("database open", "url", "postgres://voicegate:REDACTED@db.internal:5432/vg", "dsn", "postgres://vg@10.0.0.5/vg")
		}, ""},
		{"e-mail in a URL's path or query", func(l *slog.Logger) {
			l.Info("m", "a", "https://h/users/jane.doe@example.com", "b", "see https://h/?to="+email+" or mailto:"+email)
		}, `{"level":"INFO","msg":"m","a":"https://h/users/[EMAIL]","b":"see https://h/?to=[EMAIL] or mailto:[EMAIL]"}`},
		{"stringer", func(l *slog.Logger) { l.Info("m", "who", stringer{"caller " + phone}) },
			`{"level":"INFO","msg":"m","who":"caller [PHONE]"}`},
		{"[]byte", func(l *slog.Logger) { l.Info("m", "body", []byte("card "+card)) },
			`{"level":"INFO","msg":"m","body":"card [CARD]"}`},
		{"string type", func(l *slog.Logger) { l.Info("m", "note", note("mail "+email)) },
			`{"level":"INFO","msg":"m","note":"mail [EMAIL]"}`},
		{"LogValuer", func(l *slog.Logger) { l.Info("m", "v", valuer("phone "+phone)) },
			`{"level":"INFO","msg":"m","v":"phone [PHONE]"}`},
		{"group", func(l *slog.Logger) { l.Info("m", slog.Group("caller", "phone", phone, "turns", 3)) },
			`{"level":"INFO","msg":"m","caller":{"phone":"[PHONE]","turns":3}}`},
		{"nested group", func(l *slog.Logger) {
			l.Info("m", slog.Group("a", "n", 1, slog.Group("b", "email", email, "ok", true)))
		}, `{"level":"INFO","msg":"m","a":{"n":1,"b":{"email":"[EMAIL]","ok":true}}}`},
		{"WithAttrs", func(l *slog.Logger) { l.With("caller", phone, "n", 2).Info("m", "k", "v") },
			`{"level":"INFO","msg":"m","caller":"[PHONE]","n":2,"k":"v"}`},
		{"WithGroup", func(l *slog.Logger) { l.WithGroup("g").With("e", email).Info("m", "p", phone) },
			`{"level":"INFO","msg":"m","g":{"e":"[EMAIL]","p":"[PHONE]"}}`},
		{"only a late attr", func(l *slog.Logger) {
			l.Info("m", "a", 1, "b", "two", "c", 3.5, "d", true, "e", "x", "f", 6, "g", "card "+card)
		}, `{"level":"INFO","msg":"m","a":1,"b":"two","c":3.5,"d":true,"e":"x","f":6,"g":"card [CARD]"}`},
		{"panic value", func(l *slog.Logger) { l.Info("m", "p", panicky{}) },
			`{"level":"INFO","msg":"m","p":"!PANIC: cannot print [PHONE]"}`},
		// Passed through as the JSON handler writes them.
		{"numbers, bools, durations, times", func(l *slog.Logger) {
			l.Info("m", "n", 5557654321, "u", uint64(4111111111111111), "f", 15557654321.0, "ok", true,
				"d", 1500*time.Millisecond, "t", when)
		}, ""},
		{"clean line", func(l *slog.Logger) {
			l.Info("call ended", "call_id", "c-123", "reason", "hangup", "duration_ms", 81234.5, "tool", "getAppointment")
		}, ""},
		{"nil error", func(l *slog.Logger) { l.Info("m", "err", error(nil)) }, ""},
		{"nil *error", func(l *slog.Logger) { l.Info("m", "err", (*ptrError)(nil)) }, ""},
		{"nil *Stringer", func(l *slog.Logger) { l.Info("m", "s", (*ptrStringer)(nil)) }, ""},
		{"struct", func(l *slog.Logger) { l.Info("m", "s", struct{ N int }{3}) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := record(true, tc.log)
			want := tc.want
			if want == "" {
				want = record(false, tc.log)
			}
			if got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestRedactingJSON: a logger built as serve builds it keeps a phone
// number, an e-mail address and a card number out of its output, and says
// where they were.
func TestRedactingJSON(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(DefaultConfig().Handler(&buf, slog.LevelDebug))
	log = log.With("component", "tools", "caller", phone)
	log.Debug("tool request error", "tool", "lookup", "err", fmt.Errorf("answer echoed %s", email))
	log.Info("card "+card+" declined", "status", 402)
	out := buf.String()
	for _, leak := range []string{"5557654321", "jane.doe", "example.com", "4111"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log carries %q:\n%s", leak, out)
		}
	}
	for _, p := range []string{"[PHONE]", "[EMAIL]", "[CARD]", `"status":402`} {
		if !strings.Contains(out, p) {
			t.Errorf("the log lacks %s:\n%s", p, out)
		}
	}
	// Off, the same lines are written as they are.
	buf.Reset()
	log = slog.New(Config{Level: "debug"}.Handler(&buf, slog.LevelDebug))
	log.Info("card " + card)
	if !strings.Contains(buf.String(), card) {
		t.Errorf("redact_pii off still redacts:\n%s", buf.String())
	}
}

// TestRedactingDelegates: Enabled asks the handler below (the level var
// keeps working), and WithGroup and WithAttrs keep redacting.
func TestRedactingDelegates(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	h := Redacting(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: &level}))
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelWarn) {
		t.Fatal("Enabled does not follow the level")
	}
	level.Set(slog.LevelDebug)
	if !h.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("Enabled does not follow a changed level")
	}
	for _, d := range []slog.Handler{h.WithGroup("g"), h.WithAttrs([]slog.Attr{slog.String("a", "b")})} {
		if _, ok := d.(*redacting); !ok {
			t.Errorf("a derived handler %T does not redact", d)
		}
	}
}

// TestRedactingWithAttrsOnce: attributes given to WithAttrs are redacted
// when the handler is derived, and the caller's slice is left as it was.
func TestRedactingWithAttrsOnce(t *testing.T) {
	var got []slog.Attr
	h := Redacting(&capture{attrs: &got})
	attrs := []slog.Attr{slog.String("a", "x"), slog.String("p", phone)}
	h.WithAttrs(attrs)
	if attrs[1].Value.String() != phone {
		t.Fatal("WithAttrs wrote to the caller's slice")
	}
	if len(got) != 2 || got[0].Value.String() != "x" || got[1].Value.String() != "[PHONE]" {
		t.Fatalf("the handler below got %v", got)
	}
}

// capture records what WithAttrs passes on.
type capture struct{ attrs *[]slog.Attr }

func (c *capture) Enabled(context.Context, slog.Level) bool  { return true }
func (c *capture) Handle(context.Context, slog.Record) error { return nil }
func (c *capture) WithGroup(string) slog.Handler             { return c }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	*c.attrs = append(*c.attrs, as...)
	return c
}

// TestRedactingNoAllocation: a record without personal data costs no
// allocation in the wrapper (the handler below is one that allocates
// nothing itself).
func TestRedactingNoAllocation(t *testing.T) {
	h := Redacting(discard{})
	ctx := context.Background()
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "tool call failed", 0)
	r.AddAttrs(typicalAttrs()...)
	r.AddAttrs(slog.Any("err", errors.New("connection refused")), slog.Group("g", slog.String("k", "v"), slog.Int("n", 1)))
	if n := testing.AllocsPerRun(100, func() { h.Handle(ctx, r) }); n != 0 {
		t.Errorf("Handle on a clean record: %v allocations, want 0", n)
	}
}

// discard is slog.DiscardHandler, but enabled, so Handle is reached.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return true }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

func TestUnescape(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"plain text", "", false},
		{"50% off, 100%", "", false},
		{"%zz and %4", "", false},
		{"a+b", "a b", true},
		{"%2B1555", "+1555", true},
		{"x%2540y", "x@y", true},     // escaped twice
		{"%2B1+%252B", "+1 +", true}, // a '+' decoded from an escape stays
		{"next=https%3A%2F%2Fx%2F%3Fe%3Dj%2540e.com", "next=https://x/?e=j@e.com", true},
		{"%41%", "A%", true},
	}
	for _, tc := range cases {
		got, ok := unescape(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("unescape(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
