package bargein

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Config is the "bargein" section: the engine's lists and threshold, per
// language, and the actions its decisions trigger. Decode it over
// DefaultConfig.
type Config struct {
	// Enabled runs the engine on the webhook path (decisions counted and
	// kept in the call's timeline). Default true.
	Enabled bool `yaml:"enabled"`
	// Timeline is what goes into the call's timeline: "all" (default:
	// every judgement of the caller's words over the assistant, with its
	// reason), "interrupts" (only interrupts; the rest is counted in
	// metrics) or "none".
	Timeline string `yaml:"timeline"`
	// The default language's lists and threshold; a list left out is the
	// policy's default list.
	Lists `yaml:",inline"`
	// Languages are further languages, by code ("es", "de"): a list left
	// out is the default language's.
	Languages map[string]Lists `yaml:"languages"`
	// Assistants gives the language of the calls of an assistant (by Vapi
	// assistant id); a call switches language on Vapi's
	// language-change-detected message.
	Assistants map[string]string `yaml:"assistants"`
	// Actions are what a decision does to the live call (none by default:
	// observe only).
	Actions []Action `yaml:"actions"`
}

// Lists are one language's lists and threshold.
type Lists struct {
	MinWords      int      `yaml:"min_words"`
	Fillers       []string `yaml:"fillers"`
	Backchannels  []string `yaml:"backchannels"`
	Interruptions []string `yaml:"interruptions"`
}

// Action triggers: what in the engine's decisions an action follows.
const (
	// OnInterrupt: the engine decided the caller interrupts the assistant.
	OnInterrupt = "interrupt"
	// OnFinal: the caller's final transcript after an interrupt (the end
	// of what they said over the assistant).
	OnFinal = "final"
)

// Action is one rule: on a trigger, send a Live Call Control message.
type Action struct {
	// On is the trigger: "interrupt" or "final".
	On string `yaml:"on"`
	// Phrases narrows an "interrupt" action to interrupts decided by one
	// of these interruption phrases (for example the caller correcting
	// information: "actually", "that's wrong").
	Phrases []string `yaml:"phrases"`
	// Do is the control message: mute-assistant, unmute-assistant, say,
	// add-message, end-call.
	Do string `yaml:"do"`
	// Content is what say speaks, or the add-message's content.
	Content string `yaml:"content"`
	// Role is the add-message's role (default system).
	Role string `yaml:"role"`
	// TriggerResponse asks the model to answer an add-message (default
	// true).
	TriggerResponse *bool `yaml:"trigger_response"`
}

// Control message kinds an action may send.
const (
	DoMute       = "mute-assistant"
	DoUnmute     = "unmute-assistant"
	DoSay        = "say"
	DoAddMessage = "add-message"
	DoEndCall    = "end-call"
)

// DefaultConfig is the engine on, with the policy's lists, observing only.
func DefaultConfig() Config { return Config{Enabled: true, Timeline: TimelineAll} }

// Timeline settings.
const (
	TimelineAll        = "all"
	TimelineInterrupts = "interrupts"
	TimelineNone       = "none"
)

// Keep reports whether decision d goes into the call's timeline.
func (c Config) Keep(d Decision) bool {
	switch c.Timeline {
	case TimelineNone:
		return false
	case TimelineInterrupts:
		return d.Interrupt
	}
	return d.Judged()
}

var langRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// Validate returns the section's problems, each starting with its field.
func (c Config) Validate() []string {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	interruptions := map[string]bool{} // every language's, normalised
	note := func(l Lists, base []string) {
		list := l.Interruptions
		if list == nil {
			list = base
		}
		for _, s := range list {
			interruptions[strings.Join(Words(s), " ")] = true
		}
	}
	note(c.Lists, DefaultInterruptions)
	def := c.Interruptions
	if def == nil {
		def = DefaultInterruptions
	}
	for _, l := range c.Languages {
		note(l, def)
	}
	checkLists := func(path string, l Lists) {
		if len(l.Interruptions) > MaxInterruptions {
			add(path+"interruptions", "%d phrases, more than %d", len(l.Interruptions), MaxInterruptions)
		}
		if l.MinWords < 0 || l.MinWords > 20 {
			add(path+"min_words", "must be between 1 and 20 (0 or left out: the default), got %d", l.MinWords)
		}
		for name, list := range map[string][]string{"fillers": l.Fillers, "backchannels": l.Backchannels, "interruptions": l.Interruptions} {
			for i, s := range list {
				if len(Words(s)) == 0 {
					add(fmt.Sprintf("%s%s[%d]", path, name, i), "%q has no words", s)
				}
			}
		}
	}
	switch c.Timeline {
	case TimelineAll, TimelineInterrupts, TimelineNone:
	default:
		add("timeline", "%q is not all, interrupts or none", c.Timeline)
	}
	checkLists("", c.Lists)
	for lang, l := range c.Languages {
		if !langRE.MatchString(lang) {
			add("languages."+lang, "not a language code such as es or pt-BR")
		}
		checkLists("languages."+lang+".", l)
	}
	for id, lang := range c.Assistants {
		if _, ok := c.Languages[lang]; !ok {
			add("assistants."+id, "language %q is not in bargein.languages", lang)
		}
	}
	for i, a := range c.Actions {
		p := fmt.Sprintf("actions[%d].", i)
		switch a.On {
		case OnInterrupt:
			for j, ph := range a.Phrases {
				if !interruptions[strings.Join(Words(ph), " ")] {
					add(fmt.Sprintf("%sphrases[%d]", p, j), "%q is not an interruption phrase of any language (an action on it would never run)", ph)
				}
			}
		case OnFinal:
			if len(a.Phrases) > 0 {
				add(p+"phrases", "only an interrupt action is narrowed by phrases")
			}
		default:
			add(p+"on", "%q is not interrupt or final", a.On)
		}
		switch a.Do {
		case DoMute, DoUnmute, DoEndCall:
			if a.Content != "" {
				add(p+"content", "%s sends no content", a.Do)
			}
		case DoSay, DoAddMessage:
			if strings.TrimSpace(a.Content) == "" {
				add(p+"content", "%s needs content", a.Do)
			}
		default:
			add(p+"do", "%q is not one of %s", a.Do, strings.Join([]string{DoMute, DoUnmute, DoSay, DoAddMessage, DoEndCall}, ", "))
		}
		if a.Role != "" && a.Do != DoAddMessage {
			add(p+"role", "only add-message has a role")
		} else if a.Role != "" && !slices.Contains([]string{"system", "user", "assistant"}, a.Role) {
			add(p+"role", "%q is not system, user or assistant", a.Role)
		}
		if a.TriggerResponse != nil && a.Do != DoAddMessage {
			add(p+"trigger_response", "only add-message triggers a response")
		}
	}
	return probs
}

// Engine is the engine configured for every language: a policy per
// language, chosen by the call's State.Language. Read-only once built.
type Engine struct {
	cfg        Config
	def        *Policy
	langs      map[string]*Policy
	assistants map[string]string
}

// NewEngine builds the engine of a validated configuration.
func NewEngine(c Config) *Engine {
	def := compile(c.Lists, Lists{MinWords: DefaultMinWords, Fillers: DefaultFillers, Backchannels: DefaultBackchannels, Interruptions: DefaultInterruptions})
	e := &Engine{cfg: c, def: def, langs: map[string]*Policy{}, assistants: c.Assistants}
	for lang, l := range c.Languages {
		e.langs[lang] = compile(l, Lists{MinWords: def.MinWords, Fillers: def.Fillers, Backchannels: def.Backchannels, Interruptions: def.Interruptions})
	}
	return e
}

// compile is the policy of l, with base's list for each list l leaves out.
func compile(l, base Lists) *Policy {
	p := &Policy{MinWords: l.MinWords, Fillers: l.Fillers, Backchannels: l.Backchannels, Interruptions: l.Interruptions}
	if p.MinWords == 0 {
		p.MinWords = base.MinWords
	}
	if p.Fillers == nil {
		p.Fillers = base.Fillers
	}
	if p.Backchannels == nil {
		p.Backchannels = base.Backchannels
	}
	if p.Interruptions == nil {
		p.Interruptions = base.Interruptions
	}
	p.Compile()
	return p
}

// Policy returns the policy of a language: the default one for "" or an
// unknown language; "es-MX" is "es" unless it is configured itself.
func (e *Engine) Policy(lang string) *Policy {
	if lang == "" {
		return e.def
	}
	if p, ok := e.langs[lang]; ok {
		return p
	}
	if base, _, ok := strings.Cut(lang, "-"); ok {
		if p, ok := e.langs[base]; ok {
			return p
		}
	}
	return e.def
}

// Language returns the configured language a detected language (Vapi's
// language-change-detected) selects: lang itself, or its base language,
// or "" (the default) when neither is configured.
func (e *Engine) Language(lang string) string {
	if _, ok := e.langs[lang]; ok {
		return lang
	}
	if base, _, ok := strings.Cut(lang, "-"); ok {
		if _, ok := e.langs[base]; ok {
			return base
		}
	}
	return ""
}

// AssistantLanguage returns the configured language of an assistant's
// calls ("" : the default).
func (e *Engine) AssistantLanguage(assistantID string) string { return e.assistants[assistantID] }

// Keep reports whether decision d goes into the call's timeline
// (bargein.timeline).
func (e *Engine) Keep(d Decision) bool { return e.cfg.Keep(d) }

// Decide applies one event to the call's state with the policy of the
// call's language.
func (e *Engine) Decide(s *State, ev Event) Decision { return e.Policy(s.Language).Decide(s, ev) }
