package bargein

// Regression tests from the adversarial review of issue 11 (each failed on
// the reviewed change).

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReviewModifierApostrophe: the policy reads ʼ (U+02BC, a letter,
// category Lm) as ', which is punctuation unless it sits between two
// letters or digits. The tokenizer only maps it to ' after deciding it is
// not a separator, so "Waitʼ" is the word "wait'" and no phrase.
func TestReviewModifierApostrophe(t *testing.T) {
	p := DefaultPolicy()
	for _, text := range []string{"Waitʼ", "ʼstopʼ", "noʼ, thatʼs wrong"} {
		s := State{Speaking: true, WindowStart: 1, WindowKnown: true}
		d := p.Decide(&s, Event{Type: "transcript", Role: "user", TranscriptType: "partial", Transcript: text, Timestamp: 2, TimeKnown: true})
		if !d.Interrupt || d.Code != CodePhrase {
			t.Errorf("%q: %+v (words %q), want an interruption phrase", text, d, Words(text))
		}
	}
	if got := strings.Join(Words("ʼ"), "|"); got != "" {
		t.Errorf(`Words("ʼ") = %q, want no words`, got)
	}
}

// TestReviewTimestamps: the policy's timestamps are epoch ms (a number, or
// a string of digits) or ISO 8601; anything else is unreadable (no
// decision), and order is compared on the real instants.
func TestReviewTimestamps(t *testing.T) {
	for _, raw := range []string{`"NaN"`, `"Infinity"`, `"-Inf"`, `"1.767e12"`, `"0x1p40"`} {
		if ms, ok := Timestamp(json.RawMessage(raw)); ok {
			t.Errorf("Timestamp(%s) = %d, readable; the policy wants a string of digits", raw, ms)
		}
	}
	for _, raw := range []string{`"2026-01-01T12:00:00+0200"`, `"2026-01-01T12:00:00+02"`} {
		if ms, ok := Timestamp(json.RawMessage(raw)); !ok || ms != 1767261600000000 {
			t.Errorf("Timestamp(%s) = %d %v, want 1767261600000000 µs (an ISO 8601 offset)", raw, ms, ok)
		}
	}
	// A transcript 0.5 ms before the started is stale (rule 2); truncating
	// to whole ms makes them equal.
	p := DefaultPolicy()
	var s State
	for _, c := range [][2]string{{`1767000000000.9`, `1767000000000.4`}, {`"2026-01-01T10:00:00.0009Z"`, `"2026-01-01T10:00:00.0004Z"`}} {
		s = State{}
		w, _ := Timestamp(json.RawMessage(c[0]))
		u, _ := Timestamp(json.RawMessage(c[1]))
		p.Decide(&s, Event{Type: "speech-update", Role: "assistant", Status: "started", Timestamp: w, TimeKnown: true})
		if d := p.Decide(&s, Event{Type: "transcript", Role: "user", TranscriptType: "partial", Transcript: "wait", Timestamp: u, TimeKnown: true}); d.Interrupt {
			t.Errorf("window %s, transcript %s: %+v, want stale", c[0], c[1], d)
		}
	}
}

// TestReviewFinalOnlyInterruptIsFinal: an interrupt decided on the final
// transcript itself (rule 7, only finals arrive) must also be the caller's
// final for "unmute on final" actions; otherwise a mute is never undone.
func TestReviewFinalOnlyInterruptIsFinal(t *testing.T) {
	p := DefaultPolicy()
	var s State
	p.Decide(&s, Event{Type: "speech-update", Role: "assistant", Status: "started", Timestamp: 1, TimeKnown: true})
	d := p.Decide(&s, Event{Type: FinalType, Role: "user", Transcript: "wait", Timestamp: 2, TimeKnown: true})
	if !d.Interrupt || !d.Final {
		t.Fatalf("%+v: an interrupt decided on the final is not marked Final", d)
	}
}
