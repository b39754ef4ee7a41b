// Package endpointing answers Vapi's call.endpointing.request: how long to
// wait for the caller to go on before the assistant takes the turn
// ({"timeoutSeconds": n}), chosen by rules from what the assistant last
// asked — longer after it asked for a number, an address, a date of birth
// or something to spell, shorter after a yes/no question — per assistant,
// with a configured default that is always answered.
package endpointing

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Built-in classes of the assistant's last question (Rule.After).
const (
	AfterDateOfBirth = "date_of_birth"
	AfterNumber      = "number"
	AfterAddress     = "address"
	AfterSpelling    = "spelling"
	AfterYesNo       = "yes_no"
)

// classes are the built-in classes, in the order they are tried (the more
// specific first: "your date of birth" is not a number).
var classes = []struct {
	name string
	re   *regexp.Regexp
}{
	{AfterDateOfBirth, regexp.MustCompile(`\b(date of birth|birth ?date|birthday|when were you born|dob)\b`)},
	{AfterSpelling, regexp.MustCompile(`\b(spell|spelling|e-?mail)\b`)},
	{AfterNumber, regexp.MustCompile(`\b(number|digits|zip|postal code|postcode|account|card|pin|code|phone|ssn|social security|member id|policy id|amount)\b`)},
	{AfterAddress, regexp.MustCompile(`\b(address|street|where do you live|city)\b`)},
	{AfterYesNo, regexp.MustCompile(`(^|[.!?]\s*)(is|are|am|do|does|did|can|could|would|will|should|shall|have|has|had|may|was|were)\b[^.!?]*\?\s*$|\byes or no\b`)},
}

// Config is the "vapi.endpointing" section. Decode it over DefaultConfig.
type Config struct {
	// DefaultSeconds is answered when no rule matches (0–15).
	DefaultSeconds float64 `yaml:"default_seconds"`
	// Rules are tried in order; the first that matches the assistant's
	// last message decides.
	Rules []Rule `yaml:"rules"`
	// Assistants replace the default and the rules for one assistant (by
	// Vapi assistant id).
	Assistants map[string]Assistant `yaml:"assistants"`
}

// Assistant is one assistant's default (left out: the section's) and
// rules.
type Assistant struct {
	DefaultSeconds *float64 `yaml:"default_seconds"`
	Rules          []Rule   `yaml:"rules"`
}

// Rule: when the assistant's last message is of class After (or matches
// Pattern, a case-insensitive regular expression), wait Seconds.
type Rule struct {
	After   string  `yaml:"after"`
	Pattern string  `yaml:"pattern"`
	Seconds float64 `yaml:"seconds"`
}

// MaxSeconds is Vapi's bound on timeoutSeconds.
const MaxSeconds = 15

// DefaultConfig: 1 s by default; 3 s after a question for a number, an
// address, a date of birth or a spelling (callers pause between digits and
// words); 0.6 s after a yes/no question.
func DefaultConfig() Config {
	return Config{DefaultSeconds: 1, Rules: []Rule{
		{After: AfterDateOfBirth, Seconds: 3}, {After: AfterSpelling, Seconds: 3}, {After: AfterNumber, Seconds: 3},
		{After: AfterAddress, Seconds: 3}, {After: AfterYesNo, Seconds: 0.6},
	}}
}

// Validate returns the section's problems, each starting with its field.
func (c Config) Validate() []string {
	var probs []string
	check := func(path string, def float64, rules []Rule) {
		if !(def >= 0 && def <= MaxSeconds) { // NaN fails both
			probs = append(probs, fmt.Sprintf("%sdefault_seconds: must be between 0 and %d, got %g", path, MaxSeconds, def))
		}
		for i, r := range rules {
			p := fmt.Sprintf("%srules[%d].", path, i)
			switch {
			case (r.After == "") == (r.Pattern == ""):
				probs = append(probs, p+"after: set after or pattern, one of them")
			case r.After != "" && classOf(r.After) == nil:
				probs = append(probs, fmt.Sprintf("%safter: %q is not one of date_of_birth, spelling, number, address, yes_no", p, r.After))
			case r.Pattern != "":
				if _, err := regexp.Compile("(?i)" + r.Pattern); err != nil {
					probs = append(probs, fmt.Sprintf("%spattern: %v", p, err))
				}
			}
			if !(r.Seconds >= 0 && r.Seconds <= MaxSeconds) {
				probs = append(probs, fmt.Sprintf("%sseconds: must be between 0 and %d, got %g", p, MaxSeconds, r.Seconds))
			}
		}
	}
	check("", c.DefaultSeconds, c.Rules)
	for id, a := range c.Assistants {
		check("assistants."+id+".", a.defaultOr(c.DefaultSeconds), a.Rules)
	}
	return probs
}

func (a Assistant) defaultOr(def float64) float64 {
	if a.DefaultSeconds != nil {
		return *a.DefaultSeconds
	}
	return def
}

func classOf(name string) *regexp.Regexp {
	for _, c := range classes {
		if c.name == name {
			return c.re
		}
	}
	return nil
}

type rule struct {
	name    string
	re      *regexp.Regexp
	seconds float64
}

type set struct {
	def   float64
	rules []rule
}

// Chooser answers endpointing requests. Read-only once built.
type Chooser struct {
	def        set
	assistants map[string]set
}

// New builds the chooser of a validated configuration.
func New(c Config) (*Chooser, error) {
	build := func(def float64, rules []Rule) (set, error) {
		s := set{def: def}
		for _, r := range rules {
			ru := rule{seconds: r.Seconds}
			if r.After != "" {
				ru.name, ru.re = "after "+r.After, classOf(r.After)
			} else {
				re, err := regexp.Compile("(?i)" + r.Pattern)
				if err != nil {
					return s, err
				}
				ru.name, ru.re = "pattern", re
			}
			s.rules = append(s.rules, ru)
		}
		return s, nil
	}
	def, err := build(c.DefaultSeconds, c.Rules)
	if err != nil {
		return nil, err
	}
	ch := &Chooser{def: def, assistants: map[string]set{}}
	for id, a := range c.Assistants {
		if ch.assistants[id], err = build(a.defaultOr(c.DefaultSeconds), a.Rules); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// Choose returns the timeout for a call of assistantID whose conversation
// (Vapi's messagesOpenAIFormatted) is messages, and the rule that chose it
// ("default" when none matched, or the conversation could not be read).
func (ch *Chooser) Choose(assistantID string, messages json.RawMessage) (float64, string) {
	s, ok := ch.assistants[assistantID]
	if !ok {
		s = ch.def
	}
	last := strings.ToLower(LastAssistantText(messages))
	if last == "" {
		return s.def, "default"
	}
	for _, r := range s.rules {
		if r.re.MatchString(last) {
			return r.seconds, r.name
		}
	}
	return s.def, "default"
}

// LastAssistantText is the text of the last assistant message of an
// OpenAI-format conversation (content as a string, or as parts with
// text); "" when there is none or it cannot be read.
func LastAssistantText(messages json.RawMessage) string {
	var msgs []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(messages, &msgs) != nil {
		return ""
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "assistant" {
			continue
		}
		var s string
		if json.Unmarshal(msgs[i].Content, &s) == nil {
			return s
		}
		var parts []struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(msgs[i].Content, &parts) == nil {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(p.Text)
				b.WriteByte(' ')
			}
			return strings.TrimSpace(b.String())
		}
		return ""
	}
	return ""
}
