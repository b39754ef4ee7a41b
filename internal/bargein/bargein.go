// Package bargein provides the barge-in engine: per call, it decides from
// speech and transcript events whether the caller is taking the turn from
// the assistant (../shared/reference/bargein-policy.md is the policy it
// implements). It is transport-agnostic: events in, a decision with its
// reason out. A call's state is a small plain value (State) — no pointers
// into shared structures, no timers, no goroutines — so that it can later
// live in a shared store.
package bargein

import (
	"regexp"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Policy holds the word lists and the threshold (defaults: DefaultPolicy).
type Policy struct {
	// MinWords is how many content words make an interruption.
	MinWords int
	// Fillers, Backchannels and Interruptions are phrases (one or more
	// words), normalised like transcripts.
	Fillers, Backchannels, Interruptions []string

	phrases []phrase // all lists, longest first
}

type kind uint8

const (
	content kind = iota
	filler
	backchannel
	interruption
)

type phrase struct {
	words []string
	kind  kind
}

// DefaultPolicy returns the policy's default lists (English and Spanish)
// and a threshold of 2 content words.
func DefaultPolicy() *Policy {
	p := &Policy{
		MinWords: 2,
		Fillers:  []string{"um", "uh", "uhm", "er", "ah", "hmm", "mm", "huh", "eh"},
		Backchannels: []string{"okay", "ok", "yeah", "yes", "yep", "uh-huh", "uh huh", "mm-hmm", "mhm", "right", "sure", "got it",
			"i see", "alright", "all right", "cool", "sí", "si", "vale", "ajá", "claro"},
		Interruptions: []string{"wait", "stop", "hold on", "hang on", "actually", "no", "sorry", "excuse me", "one second",
			"that's wrong", "that is wrong", "espera", "espere", "un momento", "perdón"},
	}
	p.Compile()
	return p
}

// Compile prepares the lists (after a change to them).
func (p *Policy) Compile() {
	p.phrases = nil
	add := func(list []string, k kind) {
		for _, s := range list {
			if w := Words(s); len(w) > 0 {
				p.phrases = append(p.phrases, phrase{w, k})
			}
		}
	}
	add(p.Interruptions, interruption)
	add(p.Backchannels, backchannel)
	add(p.Fillers, filler)
	sort.SliceStable(p.phrases, func(i, j int) bool { return len(p.phrases[i].words) > len(p.phrases[j].words) })
}

// noiseTag is a bracketed noise tag: a filler word in the text.
var noiseTag = regexp.MustCompile(`\[[^\[\]]*\]`)

// noiseWord stands for a noise tag once punctuation is gone.
const noiseWord = "\u2400noise"

// Words normalises a transcript into its words: NFC, lower case, ’ and ʼ
// as ', every punctuation character a space — but an apostrophe between
// two letters or digits, which stays in its word — and a noise tag such
// as [cough] one filler word.
func Words(s string) []string {
	s = norm.NFC.String(s)
	s = strings.NewReplacer("’", "'", "ʼ", "'").Replace(s)
	s = noiseTag.ReplaceAllString(s, " "+noiseWord+" ")
	s = strings.ToLower(s)
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '\'' && i > 0 && i+1 < len(rs) && isAlnum(rs[i-1]) && isAlnum(rs[i+1]):
			b.WriteRune(r)
		case r == '\u2400':
			b.WriteRune(r)
		case unicode.IsPunct(r) || (r < 128 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.Fields(b.String())
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// classify reads words into phrases, longest first at each position, and
// returns the interruption phrase found (if any) and the content words.
func (p *Policy) classify(words []string) (interrupt string, contentWords int) {
	for i := 0; i < len(words); {
		if words[i] == noiseWord {
			i++
			continue
		}
		matched := false
		for _, ph := range p.phrases {
			n := len(ph.words)
			if i+n > len(words) || !equal(words[i:i+n], ph.words) {
				continue
			}
			if ph.kind == interruption && interrupt == "" {
				interrupt = strings.Join(ph.words, " ")
			}
			i += n
			matched = true
			break
		}
		if !matched {
			contentWords++
			i++
		}
	}
	return interrupt, contentWords
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// State is one call's state: a small plain value.
type State struct {
	// Speaking: an assistant "started" has arrived with no "stopped"
	// since.
	Speaking bool
	// WindowStart is that "started" event's timestamp (ms), WindowKnown
	// whether it could be read.
	WindowStart int64
	WindowKnown bool
	// Decided: an interrupt was decided in this speech window (rule 6).
	Decided bool
}

// Event is what the engine reads of a message.
type Event struct {
	Type           string // "speech-update", "transcript", "transcript[transcriptType=\"final\"]", ...
	Role           string
	Status         string
	TranscriptType string
	Transcript     string
	// Timestamp is the event's own time, ms since the epoch; TimeKnown
	// whether it could be read.
	Timestamp int64
	TimeKnown bool
}

// FinalType is the literal type Vapi gives some final transcripts.
const FinalType = `transcript[transcriptType="final"]`

// Decision is the engine's answer to one event.
type Decision struct {
	Interrupt bool
	Reason    string
}

// Decide applies one event to the call's state and returns the decision.
func (p *Policy) Decide(s *State, e Event) Decision {
	switch {
	case e.Type == "speech-update" && e.Role == "assistant" && e.Status == "started":
		*s = State{Speaking: true, WindowStart: e.Timestamp, WindowKnown: e.TimeKnown}
		return Decision{Reason: "assistant started speaking"}
	case e.Type == "speech-update" && e.Role == "assistant" && e.Status == "stopped":
		s.Speaking = false
		return Decision{Reason: "assistant stopped speaking"}
	case (e.Type == "transcript" || e.Type == FinalType) && e.Role == "user":
	default:
		return Decision{Reason: "not a decision event"}
	}
	switch {
	case !s.Speaking:
		return Decision{Reason: "assistant not speaking"}
	case s.Decided:
		return Decision{Reason: "already interrupted in this turn"}
	case !e.TimeKnown || !s.WindowKnown:
		return Decision{Reason: "no readable timestamp"}
	case e.Timestamp < s.WindowStart:
		return Decision{Reason: "stale: spoken before the assistant started"}
	}
	phrase, n := p.classify(Words(e.Transcript))
	switch {
	case phrase != "":
		s.Decided = true
		return Decision{Interrupt: true, Reason: "interruption phrase: " + phrase}
	case n == 0:
		return Decision{Reason: "backchannel or filler only"}
	case n >= p.MinWords:
		s.Decided = true
		return Decision{Interrupt: true, Reason: "content words"}
	}
	return Decision{Reason: "too few content words"}
}
