package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCallsCommand plays a simulated call against the real binary, then,
// while serve still runs on the database, reads it back with calls list and
// calls show: the read-only view neither waits for nor disturbs the server.
func TestCallsCommand(t *testing.T) {
	dir := t.TempDir()
	p := start(t, nil, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	re := regexp.MustCompile(`simulate --url (\S+) --secret ([0-9a-f]{64})`)
	m := re.FindStringSubmatch(p.stdout.String())
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); m = re.FindStringSubmatch(p.stdout.String()) {
		time.Sleep(10 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("dev output lacks the simulate line:\n%s", p.stdout.String())
	}
	// A simulated call is stored only when it asks to be (--effects).
	sim := []string{"simulate", "--url", m[1], "--secret", m[2], "--scenario", "call", "--effects"}
	if out, err := run(t, nil, sim...); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}

	out, err := run(t, nil, "calls", "list", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatalf("calls list --json while serving: %v\n%s", err, out)
	}
	var list []struct {
		ID, Status, Type string
		EndedReason      string  `json:"ended_reason"`
		PhoneNumberID    string  `json:"phone_number_id"`
		CreatedAt        string  `json:"created_at"`
		EndedAt          *string `json:"ended_at"`
		Cost             *float64
		DurationSeconds  *float64 `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("calls list --json: %v, want one call:\n%s", err, out)
	}
	c := list[0]
	if c.Status != "ended" || c.EndedReason != "customer-ended-call" || c.Type != "inboundPhoneCall" || c.PhoneNumberID != "pn-simulate" ||
		c.EndedAt == nil || c.Cost == nil || *c.Cost != 0.042 {
		t.Fatalf("the simulated call as listed: %+v\n%s", c, out)
	}
	if _, err := time.Parse(time.RFC3339, c.CreatedAt); err != nil || !strings.HasSuffix(c.CreatedAt, "Z") {
		t.Errorf("created_at %q is not RFC 3339 in UTC", c.CreatedAt)
	}

	out, err = run(t, nil, "calls", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "ID ") || !regexp.MustCompile(regexp.QuoteMeta(c.ID)+` +`+regexp.QuoteMeta(c.CreatedAt)+` +ended +customer-ended-call `).MatchString(out) {
		t.Fatalf("calls list: %v\n%s", err, out)
	}

	out, err = run(t, nil, "calls", "show", c.ID, "--data-dir", dir)
	if err != nil {
		t.Fatalf("calls show: %v\n%s", err, out)
	}
	_, timeline, ok := strings.Cut(out, "timeline:\n")
	// Status changes, and between them the barge-in engine's judgements
	// of the simulated caller talking over the assistant.
	var seq []string
	for _, l := range strings.Split(strings.TrimSpace(timeline), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("timeline line %q:\n%s", l, out)
		}
		if _, err := time.Parse(time.RFC3339, f[0]); err != nil {
			t.Errorf("timeline time %q: %v", f[0], err)
		}
		seq = append(seq, strings.Join(f[1:], " "))
	}
	want := "[ringing in-progress bargein: interrupt: content words bargein: none: already interrupted in this turn vapi: user-interrupted ended]"
	if !ok || fmt.Sprint(seq) != want || !strings.Contains(out, "id               "+c.ID+"\n") {
		t.Fatalf("calls show: timeline %v:\n%s", seq, out)
	}

	// An unknown id is exit code 1, a usage mistake 2.
	for args, want := range map[string]int{"show nope --data-dir " + dir: 1, "show --data-dir " + dir: 2} {
		out, err := run(t, nil, append([]string{"calls"}, strings.Fields(args)...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != want {
			t.Errorf("calls %s: %v, want exit code %d\n%s", args, err, want, out)
		}
	}

	// The server was not disturbed: it still answers, and stops cleanly.
	if out, err := run(t, nil, sim...); err != nil {
		t.Fatalf("simulate after reading: %v\n%s", err, out)
	}
	logs := p.stop(t)
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("server errors while the database was read:\n%s", logs)
	}
	// And with the server stopped, the calls are still read.
	if out, err := run(t, nil, "calls", "list", "--data-dir", dir, "--json"); err != nil || strings.Count(out, `"id"`) != 2 {
		t.Fatalf("calls list after serve stopped: %v\n%s", err, out)
	}
}
