package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestRedact: line for line, line endings kept, every kind replaced.
func TestRedact(t *testing.T) {
	in := "User: call me at (415) 555-0134 or mail jane.doe@example.com\r\n" +
		"no personal data, order 48213977 at 10:30\n" +
		"\n" +
		"AI: And your date of birth, please?\n" +
		"User: March 3rd 1990\n" + // the answer, on the next line
		"SSN 123-45-6789, card 4111 1111 1111 1111, DOB: 03/14/1985" // no final newline
	want := "User: call me at [PHONE] or mail [EMAIL]\r\n" +
		"no personal data, order 48213977 at 10:30\n" +
		"\n" +
		"AI: And your date of birth, please?\n" +
		"User: [DOB]\n" +
		"SSN [SSN], card [CARD], DOB: [DOB]"
	var stdout, stderr bytes.Buffer
	if err := runRedact(nil, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatalf("redact: %v\n%s", err, stderr.String())
	}
	if got := stdout.String(); got != want {
		t.Errorf("redact output\n got %q\nwant %q", got, want)
	}
}

// TestRedactJSON: one object per line, offsets in bytes of the original
// line, an empty findings list as [].
func TestRedactJSON(t *testing.T) {
	in := "Zoë <zoe@example.fr> & +33 6 12 34 56 78\nnothing here\n"
	var stdout, stderr bytes.Buffer
	if err := runRedact([]string{"--json"}, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatalf("redact --json: %v\n%s", err, stderr.String())
	}
	want := `{"text":"Zoë <[EMAIL]> & [PHONE]","findings":[{"kind":"EMAIL","start":6,"end":20},{"kind":"PHONE","start":24,"end":41}]}` + "\n" +
		`{"text":"nothing here","findings":[]}` + "\n"
	if got := stdout.String(); got != want {
		t.Errorf("redact --json output\n got %s\nwant %s", got, want)
	}
	first := strings.SplitN(in, "\n", 2)[0]
	var line struct {
		Findings []struct{ Start, End int }
	}
	if err := json.Unmarshal([]byte(strings.SplitN(stdout.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	for _, f := range line.Findings {
		if s := first[f.Start:f.End]; s != "zoe@example.fr" && s != "+33 6 12 34 56 78" {
			t.Errorf("offsets %d:%d are %q in the original line", f.Start, f.End, s)
		}
	}
}

// TestRedactLongLine: a line over 1 MiB is an error naming it; the lines
// before it are written; a line of exactly 1 MiB is not an error.
func TestRedactLongLine(t *testing.T) {
	exact := strings.Repeat("a", maxRedactLine)
	var stdout, stderr bytes.Buffer
	if err := runRedact(nil, strings.NewReader(exact+"\r\nok\n"), &stdout, &stderr); err != nil {
		t.Fatalf("a line of exactly %d bytes: %v", maxRedactLine, err)
	}
	if stdout.Len() != maxRedactLine+len("\r\nok\n") {
		t.Errorf("output is %d bytes, want %d", stdout.Len(), maxRedactLine+len("\r\nok\n"))
	}

	stdout.Reset()
	in := "call 555-123-4567\n" + strings.Repeat("x", maxRedactLine+1) + "\nnot reached\n"
	err := runRedact(nil, strings.NewReader(in), &stdout, &stderr)
	if !errors.Is(err, errLineTooLong) || !strings.Contains(err.Error(), "line 2:") {
		t.Fatalf("over-long line: err = %v, want errLineTooLong naming line 2", err)
	}
	if got := stdout.String(); got != "call [PHONE]\n" {
		t.Errorf("output before the over-long line = %q", got)
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		t.Errorf("an over-long line is a runtime error (exit 1), not a usage error")
	}
}

// TestRedactUsage: stray arguments and unknown flags are usage errors (exit
// 2); -h is not an error.
func TestRedactUsage(t *testing.T) {
	for _, args := range [][]string{{"file.txt"}, {"--jsn"}} {
		var stdout, stderr bytes.Buffer
		err := runRedact(args, strings.NewReader("x\n"), &stdout, &stderr)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("redact %v: err = %v, want a UsageError", args, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("redact %v wrote %q", args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if err := runRedact([]string{"-h"}, strings.NewReader(""), &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("redact -h: err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "usage: voicegate redact") {
		t.Errorf("redact -h prints no usage:\n%s", stderr.String())
	}
}

// TestRunDispatchesRedact: Run knows the command (its input is the
// process's standard input, so only a usage error is checked here).
func TestRunDispatchesRedact(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), []string{"voicegate", "redact", "stray"}, func(string) string { return "" }, &stdout, &stderr)
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "stray") {
		t.Errorf("voicegate redact stray: err = %v, want a usage error", err)
	}
}
