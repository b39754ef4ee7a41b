// Package bargein provides the barge-in engine: per call, it decides from
// speech and transcript events whether the caller is taking the turn from
// the assistant (../shared/reference/bargein-policy.md is the policy it
// implements). It is transport-agnostic: events in, a decision with its
// reason out. A call's state is a small plain value (State) — no pointers
// into shared structures, no timers, no goroutines — so that it can later
// live in a shared store.
package bargein

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Policy holds the word lists and the threshold of one language
// (defaults: DefaultPolicy).
type Policy struct {
	// MinWords is how many content words make an interruption.
	MinWords int
	// Fillers, Backchannels and Interruptions are phrases (one or more
	// words), normalised like transcripts.
	Fillers, Backchannels, Interruptions []string

	phrases []phrase // all lists, longest first
	// byFirst indexes phrases by their first rune: the phrases that may
	// start at a word, longest first.
	byFirst map[rune][]int
	// bits gives the first 64 interruption phrases a bit each, by text.
	bits map[string]uint64
}

// MaxInterruptions is how many interruption phrases a language may have
// (each is a bit of a decision).
const MaxInterruptions = 64

type kind uint8

const (
	content kind = iota
	filler
	backchannel
	interruption
)

type phrase struct {
	words []string
	text  string // the words joined by spaces
	kind  kind
	bit   uint64 // an interruption phrase's bit (0 beyond the 64th)
}

// Default lists of the policy (English and Spanish together).
var (
	DefaultFillers      = []string{"um", "uh", "uhm", "er", "ah", "hmm", "mm", "huh", "eh"}
	DefaultBackchannels = []string{"okay", "ok", "yeah", "yes", "yep", "uh-huh", "uh huh", "mm-hmm", "mhm", "right", "sure", "got it",
		"i see", "alright", "all right", "cool", "sí", "si", "vale", "ajá", "claro"}
	DefaultInterruptions = []string{"wait", "stop", "hold on", "hang on", "actually", "no", "sorry", "excuse me", "one second",
		"that's wrong", "that is wrong", "espera", "espere", "un momento", "perdón"}
)

// DefaultMinWords is the policy's default threshold.
const DefaultMinWords = 2

// DefaultPolicy returns the policy's default lists (English and Spanish)
// and a threshold of 2 content words.
func DefaultPolicy() *Policy {
	p := &Policy{MinWords: DefaultMinWords, Fillers: DefaultFillers, Backchannels: DefaultBackchannels, Interruptions: DefaultInterruptions}
	p.Compile()
	return p
}

// Compile prepares the lists (after a change to them).
func (p *Policy) Compile() {
	p.phrases = nil
	add := func(list []string, k kind) {
		for _, s := range list {
			if w := Words(s); len(w) > 0 {
				p.phrases = append(p.phrases, phrase{words: w, text: strings.Join(w, " "), kind: k})
			}
		}
	}
	add(p.Interruptions, interruption)
	add(p.Backchannels, backchannel)
	add(p.Fillers, filler)
	sort.SliceStable(p.phrases, func(i, j int) bool { return len(p.phrases[i].words) > len(p.phrases[j].words) })
	p.bits = make(map[string]uint64)
	for i := range p.phrases {
		ph := &p.phrases[i]
		if ph.kind != interruption {
			continue
		}
		if b, ok := p.bits[ph.text]; ok {
			ph.bit = b
		} else if len(p.bits) < 64 {
			ph.bit = 1 << len(p.bits)
			p.bits[ph.text] = ph.bit
		}
	}
	p.byFirst = make(map[rune][]int)
	for i, ph := range p.phrases {
		r, _ := utf8.DecodeRuneInString(ph.words[0])
		p.byFirst[r] = append(p.byFirst[r], i)
	}
}

// noiseWord stands for a noise tag such as [cough] among Words' output.
const noiseWord = "\u2400noise"

// token is one word of a transcript: a span of the (NFC) text, compared
// with the lists without being copied; noise marks a noise tag.
type token struct {
	s     string
	noise bool
}

// Words normalises a transcript into its words: NFC, lower case, ’ and ʼ
// as ', every punctuation character a space — but an apostrophe between
// two letters or digits, which stays in its word — and a noise tag such
// as [cough] one filler word.
func Words(s string) []string {
	var buf [64]token
	toks := tokenize(s, buf[:0])
	out := make([]string, len(toks))
	for i, t := range toks {
		if t.noise {
			out[i] = noiseWord
			continue
		}
		out[i] = normWord(t.s)
	}
	return out
}

// normWord is a token's text as it is compared: lower case, ’ and ʼ as '.
func normWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '’' || r == 'ʼ' {
			return '\''
		}
		return unicode.ToLower(r)
	}, s)
}

// tokenize splits s into tokens, appending to toks (allocation-free for
// NFC text of up to cap(toks) words).
func tokenize(s string, toks []token) []token {
	if !isASCII(s) && norm.NFC.QuickSpanString(s) != len(s) {
		s = norm.NFC.String(s)
	}
	start := -1 // the current word's first byte
	var prev rune
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '[' {
			if end := noiseTagEnd(s, i); end > 0 {
				if start >= 0 {
					toks = append(toks, token{s: s[start:i]})
					start = -1
				}
				toks = append(toks, token{noise: true})
				i, prev = end, ']'
				continue
			}
		}
		// ʼ (a modifier letter) counts as ', which is punctuation.
		sep := isPunct(r) || unicode.IsSpace(r) || r == 'ʼ'
		if sep && isApostrophe(r) && isAlnum(unicode.ToLower(prev)) {
			if next, _ := utf8.DecodeRuneInString(s[i+n:]); i+n < len(s) && isAlnum(unicode.ToLower(next)) && !(next == '[' && noiseTagEnd(s, i+n) > 0) {
				sep = false
			}
		}
		if sep {
			if start >= 0 {
				toks = append(toks, token{s: s[start:i]})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		prev = r
		i += n
	}
	if start >= 0 {
		toks = append(toks, token{s: s[start:]})
	}
	return toks
}

// noiseTagEnd returns the index after the "]" that closes the "[" at i,
// with no other "[" or "]" between them; 0 when there is none.
func noiseTagEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case ']':
			return j + 1
		case '[':
			return 0
		}
	}
	return 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isApostrophe(r rune) bool { return r == '\'' || r == '’' || r == 'ʼ' }

func isPunct(r rune) bool {
	return unicode.IsPunct(r) || (r < 128 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r))
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordEq reports whether token t, normalised, is word w (already
// normalised), without building the normalised token.
func wordEq(t token, w string) bool {
	if t.noise {
		return w == noiseWord
	}
	s := t.s
	for _, wr := range w {
		if s == "" {
			return false
		}
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if r == '’' || r == 'ʼ' {
			r = '\''
		}
		if unicode.ToLower(r) != wr {
			return false
		}
	}
	return s == ""
}

// classify reads tokens into phrases, longest first at each position, and
// returns the first interruption phrase found (if any), every one found
// (bits of their index among the interruption phrases) and the content
// words.
func (p *Policy) classify(toks []token) (interrupt string, all uint64, contentWords int) {
	for i := 0; i < len(toks); {
		if toks[i].noise {
			i++
			continue
		}
		matched := false
		r, _ := utf8.DecodeRuneInString(toks[i].s)
		if r == '’' || r == 'ʼ' {
			r = '\''
		}
		for _, k := range p.byFirst[unicode.ToLower(r)] {
			ph := &p.phrases[k]
			n := len(ph.words)
			if i+n > len(toks) || !phraseAt(toks[i:i+n], ph.words) {
				continue
			}
			if ph.kind == interruption {
				if interrupt == "" {
					interrupt = ph.text
				}
				all |= ph.bit
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
	return interrupt, all, contentWords
}

func phraseAt(toks []token, words []string) bool {
	for i := range words {
		if !wordEq(toks[i], words[i]) {
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
	// WindowStart is that "started" event's timestamp (µs since the
	// epoch), WindowKnown whether it could be read.
	WindowStart int64
	WindowKnown bool
	// Decided: an interrupt was decided in this speech window (rule 6).
	Decided bool
	// AwaitFinal: an interrupt was decided and the caller's final
	// transcript has not arrived since (barge-in actions such as "unmute
	// on the caller's final transcript" wait for it; kept across speech
	// windows, so that an action undone on the final is never left
	// undone).
	AwaitFinal bool
	// Language selects the policy (empty: the default one).
	Language string
}

// Event is what the engine reads of a message.
type Event struct {
	Type           string // "speech-update", "transcript", "transcript[transcriptType=\"final\"]", ...
	Role           string
	Status         string
	TranscriptType string
	Transcript     string
	// Timestamp is the event's own time, µs since the epoch; TimeKnown
	// whether it could be read.
	Timestamp int64
	TimeKnown bool
}

// FinalType is the literal type Vapi gives some final transcripts.
const FinalType = `transcript[transcriptType="final"]`

// Code is the class of a decision's reason: a bounded set, used as a
// metric label.
type Code string

// Decision reasons.
const (
	CodeAssistantStarted Code = "assistant_started"
	CodeAssistantStopped Code = "assistant_stopped"
	CodeIgnored          Code = "ignored"      // not an event the engine decides on
	CodeNotSpeaking      Code = "not_speaking" // the assistant is not speaking: turn-taking
	CodeRepeat           Code = "repeat"       // already interrupted in this window (rule 6)
	CodeNoTimestamp      Code = "no_timestamp"
	CodeStale            Code = "stale" // spoken before the assistant started (rule 2)
	CodePhrase           Code = "interruption_phrase"
	CodeBackchannel      Code = "backchannel" // backchannels and fillers only (rule 4)
	CodeContent          Code = "content_words"
	CodeTooFew           Code = "too_few_words"
)

// Codes lists every Code, in a fixed order.
var Codes = []Code{CodeAssistantStarted, CodeAssistantStopped, CodeIgnored, CodeNotSpeaking, CodeRepeat, CodeNoTimestamp,
	CodeStale, CodePhrase, CodeBackchannel, CodeContent, CodeTooFew}

// Decision is the engine's answer to one event.
type Decision struct {
	Interrupt bool
	Code      Code
	// Phrase is the interruption phrase that decided (CodePhrase).
	Phrase string
	// Final: this event is the caller's final transcript after an
	// interrupt, or the final on which one was decided (what an "unmute on
	// the final" action waits for).
	Final bool

	phrases uint64  // every interruption phrase in the transcript
	policy  *Policy // that numbered them
}

// HasPhrase reports whether the transcript that decided held interruption
// phrase text (normalised like a transcript), anywhere — "No, that's
// wrong" holds both "no" and "that's wrong".
func (d Decision) HasPhrase(text string) bool {
	if d.policy == nil {
		return false
	}
	b, ok := d.policy.bits[text]
	return ok && d.phrases&b != 0
}

// Judged reports whether the decision is a judgement of the caller's
// words over the assistant (an interrupt, or one of the reasons that
// suppress one) rather than bookkeeping or ordinary turn-taking.
func (d Decision) Judged() bool {
	switch d.Code {
	case CodeAssistantStarted, CodeAssistantStopped, CodeIgnored, CodeNotSpeaking:
		return false
	}
	return true
}

// Reason is the decision's reason in words.
func (d Decision) Reason() string {
	switch d.Code {
	case CodeAssistantStarted:
		return "assistant started speaking"
	case CodeAssistantStopped:
		return "assistant stopped speaking"
	case CodeIgnored:
		return "not a decision event"
	case CodeNotSpeaking:
		return "assistant not speaking"
	case CodeRepeat:
		return "already interrupted in this turn"
	case CodeNoTimestamp:
		return "no readable timestamp"
	case CodeStale:
		return "stale: spoken before the assistant started"
	case CodePhrase:
		return "interruption phrase: " + d.Phrase
	case CodeBackchannel:
		return "backchannel or filler only"
	case CodeContent:
		return "content words"
	case CodeTooFew:
		return "too few content words"
	}
	return string(d.Code)
}

// IsTranscript reports whether e is a transcript event (partial, final,
// or the literal final-only type).
func (e Event) IsTranscript() bool { return e.Type == "transcript" || e.Type == FinalType }

// IsFinal reports whether e is a final transcript.
func (e Event) IsFinal() bool {
	return e.Type == FinalType || (e.Type == "transcript" && e.TranscriptType == "final")
}

// Decide applies one event to the call's state and returns the decision.
// It does not allocate for transcripts in NFC of up to 64 words.
func (p *Policy) Decide(s *State, e Event) Decision {
	switch {
	case e.Type == "speech-update" && e.Role == "assistant" && e.Status == "started":
		*s = State{Speaking: true, WindowStart: e.Timestamp, WindowKnown: e.TimeKnown, AwaitFinal: s.AwaitFinal, Language: s.Language}
		return Decision{Code: CodeAssistantStarted}
	case e.Type == "speech-update" && e.Role == "assistant" && e.Status == "stopped":
		s.Speaking = false
		return Decision{Code: CodeAssistantStopped}
	case e.IsTranscript() && e.Role == "user":
	default:
		return Decision{Code: CodeIgnored}
	}
	final := false
	if s.AwaitFinal && e.IsFinal() {
		s.AwaitFinal, final = false, true
	}
	switch {
	case !s.Speaking:
		return Decision{Code: CodeNotSpeaking, Final: final}
	case s.Decided:
		return Decision{Code: CodeRepeat, Final: final}
	case !e.TimeKnown || !s.WindowKnown:
		return Decision{Code: CodeNoTimestamp, Final: final}
	case e.Timestamp < s.WindowStart:
		return Decision{Code: CodeStale, Final: final}
	}
	var buf [64]token
	phrase, all, n := p.classify(tokenize(e.Transcript, buf[:0]))
	switch {
	case phrase != "":
		// An interrupt decided on the final itself is also the caller's
		// final (only finals arrive: rule 7).
		s.Decided, s.AwaitFinal = true, !e.IsFinal()
		return Decision{Interrupt: true, Code: CodePhrase, Phrase: phrase, Final: final || e.IsFinal(), phrases: all, policy: p}
	case n == 0:
		return Decision{Code: CodeBackchannel, Final: final}
	case n >= p.MinWords:
		s.Decided, s.AwaitFinal = true, !e.IsFinal()
		return Decision{Interrupt: true, Code: CodeContent, Final: final || e.IsFinal()}
	}
	return Decision{Code: CodeTooFew, Final: final}
}
