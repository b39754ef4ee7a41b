package bargein

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/vapi"
)

// A corpus case, as bargein-policy.md's "Evaluation" describes it.
type evalCase struct {
	ID     string      `json:"id"`
	Events []evalEvent `json:"events"`
}

type evalEvent struct {
	Message struct {
		Type           string          `json:"type"`
		Role           string          `json:"role"`
		Status         string          `json:"status"`
		TranscriptType string          `json:"transcriptType"`
		Transcript     string          `json:"transcript"`
		Timestamp      json.RawMessage `json:"timestamp"`
		Call           struct {
			ID string `json:"id"`
		} `json:"call"`
	} `json:"message"`
	Expect string `json:"expect"`
}

// Score is an evaluation's result, counted over every event.
type Score struct {
	Cases, ExactCases, Events   int
	TruePos, FalsePos, FalseNeg int
}

// Precision is TP / (TP + FP) (1 when nothing was decided).
func (s Score) Precision() float64 {
	if s.TruePos+s.FalsePos == 0 {
		return 1
	}
	return float64(s.TruePos) / float64(s.TruePos+s.FalsePos)
}

// Recall is TP / (TP + FN) (1 when nothing was expected).
func (s Score) Recall() float64 {
	if s.TruePos+s.FalseNeg == 0 {
		return 1
	}
	return float64(s.TruePos) / float64(s.TruePos+s.FalseNeg)
}

// Timestamp reads an event's own time, in microseconds since the epoch
// (sub-millisecond order counts): epoch milliseconds — a finite JSON
// number, or a string of digits — or ISO 8601 (T or space; Z, ±hh:mm,
// ±hhmm or ±hh; no zone: UTC). Anything else is unreadable.
func Timestamp(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if s[0] != '"' {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return 0, false
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e14 {
			return 0, false
		}
		return int64(math.Round(f * 1000)), true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false
	}
	if allDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms > 1e14 {
			return 0, false
		}
		return ms * 1000, true
	}
	return ISOMicros(s)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ISOMicros reads an ISO 8601 time (vapi.ParseISO; no zone: UTC) as
// microseconds since the epoch.
func ISOMicros(s string) (int64, bool) {
	t, ok := vapi.ParseISO(s)
	return t.UnixMicro(), ok
}

// Eval runs the engine over a corpus (one case per line), writes one
// decision line per event to out, and scores it.
func (p *Policy) Eval(in io.Reader, out io.Writer) (Score, error) {
	var sc Score
	r := bufio.NewReader(in)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(strings.TrimSpace(string(b))) > 0 {
			var c evalCase
			if jerr := json.Unmarshal(b, &c); jerr != nil {
				return sc, fmt.Errorf("line %d: not a case: %v", line, jerr)
			}
			sc.Cases++
			exact := true
			states := map[string]*State{}
			for i, ev := range c.Events {
				m := ev.Message
				st := states[m.Call.ID]
				if st == nil {
					st = &State{}
					states[m.Call.ID] = st
				}
				ts, ok := Timestamp(m.Timestamp)
				d := p.Decide(st, Event{Type: m.Type, Role: m.Role, Status: m.Status, TranscriptType: m.TranscriptType, Transcript: m.Transcript, Timestamp: ts, TimeKnown: ok})
				decision := "none"
				if d.Interrupt {
					decision = "interrupt"
				}
				want := ev.Expect == "interrupt"
				sc.Events++
				switch {
				case d.Interrupt && want:
					sc.TruePos++
				case d.Interrupt:
					sc.FalsePos++
					exact = false
				case want:
					sc.FalseNeg++
					exact = false
				}
				if err := enc.Encode(map[string]any{"case": c.ID, "event": i, "decision": decision, "reason": d.Reason()}); err != nil {
					return sc, err
				}
			}
			if exact {
				sc.ExactCases++
			}
		}
		if err == io.EOF {
			return sc, nil
		}
		if err != nil {
			return sc, err
		}
	}
}
