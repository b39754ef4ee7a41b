// Package knowledge answers Vapi's knowledge-base-request from inside the
// network: the latest user messages are the query, and the knowledge base
// of the call's assistant answers it — an internal search API (called like
// a tool: its configured URL and headers only, a timeout, a size cap) or
// voicegate's own document store (internal/knowledge/library) — with the
// best passages within a size budget. A failing search answers no
// documents: the assistant goes on without them.
package knowledge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Config is the "vapi.knowledge_base" section (off without bases).
type Config struct {
	// Bases are the knowledge bases by name.
	Bases map[string]Base `yaml:"bases"`
	// Default is the base answering assistants not in Assistants (may be
	// left out when there is one base: that one).
	Default string `yaml:"default"`
	// Assistants chooses the base of an assistant, by Vapi assistant id
	// ("" : none — the assistant gets no documents).
	Assistants map[string]string `yaml:"assistants"`
	// MaxDocuments is the most documents answered (default 3).
	MaxDocuments int `yaml:"max_documents"`
	// MaxBytes is the budget of the documents' content together (default
	// 4000): the model's context is not the place for a whole manual.
	MaxBytes int `yaml:"max_bytes"`
	// QueryMessages is how many of the latest user messages make the
	// query (default 2).
	QueryMessages int `yaml:"query_messages"`
}

// Base is one knowledge base: an internal search API, or (without one)
// a local document store whose documents are added with
// "voicegate kb add NAME FILE...".
type Base struct {
	// SearchAPI is the internal search API, a tool entry without a name:
	// it receives {"query", "limit"} and answers {"documents": [{"content",
	// "similarity", "uuid"}]} (or the list alone).
	SearchAPI *tools.Config `yaml:"search_api"`
	// Language is the language of a local base's documents and queries,
	// for stemming and stop words (default en; see library.Languages).
	Language string `yaml:"language"`
}

// Local says whether the base is voicegate's document store.
func (b Base) Local() bool { return b.SearchAPI == nil }

// Defaults.
const (
	DefaultMaxDocuments  = 3
	DefaultMaxBytes      = 4000
	DefaultQueryMessages = 2
	DefaultLanguage      = "en"
)

// baseName is a base's name: it is a word of commands and metrics.
var baseName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// CheckBaseName says whether name may name a base.
func CheckBaseName(name string) error {
	if !baseName.MatchString(name) {
		return fmt.Errorf("a base's name is lower-case letters, digits, - and _ (at most 48)")
	}
	return nil
}

// Complete fills the defaults.
func (c *Config) Complete() {
	if c.MaxDocuments == 0 {
		c.MaxDocuments = DefaultMaxDocuments
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.QueryMessages == 0 {
		c.QueryMessages = DefaultQueryMessages
	}
	if c.Default == "" && len(c.Bases) == 1 {
		for name := range c.Bases {
			c.Default = name
		}
	}
	for name, b := range c.Bases {
		if b.Language == "" {
			b.Language = DefaultLanguage
		}
		if b.SearchAPI != nil {
			b.SearchAPI.Name = toolName(name)
			b.SearchAPI.Complete()
		}
		c.Bases[name] = b
	}
}

// toolName is the tool a base's search API is called as.
func toolName(base string) string { return "knowledge-base_" + base }

// Resolve reads the search APIs' secrets (env or file), each problem
// starting with its field.
func (c *Config) Resolve(getenv func(string) string, readFile func(string) ([]byte, error)) []string {
	var probs []string
	for _, name := range sortedKeys(c.Bases) {
		if api := c.Bases[name].SearchAPI; api != nil {
			for _, p := range api.Resolve(getenv, readFile) {
				probs = append(probs, "bases."+name+".search_api."+p)
			}
		}
	}
	return probs
}

// Validate returns the section's problems, each starting with its field.
func (c Config) Validate() []string {
	var probs []string
	if c.MaxDocuments < 1 || c.MaxDocuments > 20 {
		probs = append(probs, fmt.Sprintf("max_documents: must be between 1 and 20, got %d", c.MaxDocuments))
	}
	if c.MaxBytes < 100 || c.MaxBytes > 100_000 {
		probs = append(probs, fmt.Sprintf("max_bytes: must be between 100 and 100000, got %d", c.MaxBytes))
	}
	if c.QueryMessages < 1 || c.QueryMessages > 10 {
		probs = append(probs, fmt.Sprintf("query_messages: must be between 1 and 10, got %d", c.QueryMessages))
	}
	for _, name := range sortedKeys(c.Bases) {
		b := c.Bases[name]
		f := "bases." + name
		if err := CheckBaseName(name); err != nil {
			probs = append(probs, fmt.Sprintf("%s: %s", f, err))
		}
		if err := library.CheckLanguage(b.Language); err != nil {
			probs = append(probs, f+".language: "+err.Error())
		}
		if b.SearchAPI != nil {
			p, _ := b.SearchAPI.Validate()
			for _, s := range p {
				probs = append(probs, f+".search_api."+s)
			}
			if b.SearchAPI.Async {
				probs = append(probs, f+".search_api.async: a search answers now")
			}
		}
	}
	if c.Default != "" {
		if _, ok := c.Bases[c.Default]; !ok {
			probs = append(probs, fmt.Sprintf("default: %q is not one of bases", c.Default))
		}
	} else if len(c.Bases) > 1 && len(c.Assistants) == 0 {
		probs = append(probs, "default: name the base that answers (there are several and no assistants)")
	}
	for _, id := range sortedKeys(c.Assistants) {
		if b := c.Assistants[id]; b != "" {
			if _, ok := c.Bases[b]; !ok {
				probs = append(probs, fmt.Sprintf("assistants.%s: %q is not one of bases", id, b))
			}
		}
	}
	if len(c.Bases) == 0 && (c.Default != "" || len(c.Assistants) > 0) {
		probs = append(probs, "bases: none declared")
	}
	return probs
}

// HasLocal says whether a base is a local document store.
func (c Config) HasLocal() bool {
	for _, b := range c.Bases {
		if b.Local() {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Document is one passage of the answer.
type Document struct {
	Content    string  `json:"content"`
	Similarity float64 `json:"similarity"`
	UUID       string  `json:"uuid"`
}

// Response is the answer to knowledge-base-request.
type Response struct {
	Documents []Document `json:"documents"`
}

// Observer counts a search: its source (api, local), outcome (documents,
// none, error) and time.
type Observer func(source, outcome string, took time.Duration)

// Searcher answers knowledge-base-request.
type Searcher struct {
	cfg     Config
	tools   *tools.Router
	library *library.Library
	log     *slog.Logger
	observe Observer
	now     func() time.Time
}

// Deps are what a searcher uses.
type Deps struct {
	Log *slog.Logger
	// Library is the local document store (needed when a base is local).
	Library *library.Library
	// ObserveTool counts the search APIs' calls as tool calls.
	ObserveTool tools.Observer
	Observe     Observer
	Now         func() time.Time
}

// New builds the searcher of a validated, completed section (nil when no
// base is configured).
func New(c Config, d Deps) (*Searcher, error) {
	if len(c.Bases) == 0 {
		return nil, nil
	}
	var apis []tools.Config
	for _, name := range sortedKeys(c.Bases) {
		if b := c.Bases[name]; b.SearchAPI != nil {
			apis = append(apis, *b.SearchAPI)
		}
	}
	if c.HasLocal() && d.Library == nil {
		return nil, fmt.Errorf("vapi.knowledge_base: a local base needs the records' keyring and a store that keeps documents")
	}
	r, err := tools.New(apis, d.Log, d.ObserveTool)
	if err != nil {
		return nil, err
	}
	if d.Observe == nil {
		d.Observe = func(string, string, time.Duration) {}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Searcher{cfg: c, tools: r, library: d.Library, log: d.Log, observe: d.Observe, now: d.Now}, nil
}

// Base returns the base that answers assistantID ("": none).
func (s *Searcher) Base(assistantID string) string {
	if b, ok := s.cfg.Assistants[assistantID]; ok {
		return b
	}
	return s.cfg.Default
}

// Answer searches the knowledge base of the call's assistant for the
// latest user messages of the conversation (the message's
// messagesOpenAIFormatted) and returns the documents to answer.
func (s *Searcher) Answer(ctx context.Context, callID, assistantID string, messages json.RawMessage) Response {
	none := Response{Documents: []Document{}}
	name := s.Base(assistantID)
	base, ok := s.cfg.Bases[name]
	if !ok {
		return none
	}
	q := Query(messages, s.cfg.QueryMessages)
	if q == "" {
		return none
	}
	start := s.now()
	source := "api"
	if base.Local() {
		source = "local"
	}
	docs, err := s.search(ctx, callID, name, base, q)
	outcome := "documents"
	if err != nil {
		outcome = "error"
		s.log.Warn("knowledge base search failed; answering no documents", logkey.CallID, callID, logkey.Base, name, logkey.Err, err)
	} else if len(docs) == 0 {
		outcome = "none"
	}
	s.observe(source, outcome, s.now().Sub(start))
	if err != nil {
		return none
	}
	return Response{Documents: budget(docs, s.cfg.MaxDocuments, s.cfg.MaxBytes)}
}

func (s *Searcher) search(ctx context.Context, callID, name string, base Base, q string) ([]Document, error) {
	if base.Local() {
		res, err := s.library.Search(ctx, name, base.Language, q, s.cfg.MaxDocuments)
		if err != nil {
			return nil, err
		}
		docs := make([]Document, len(res))
		for i, r := range res {
			docs[i] = Document{Content: r.Content, Similarity: r.Similarity, UUID: r.UUID}
		}
		return docs, nil
	}
	args, _ := json.Marshal(map[string]any{"query": q, "limit": s.cfg.MaxDocuments})
	res := s.tools.Call(ctx, tools.CallInfo{CallID: callID}, vapi.Invocation{Name: toolName(name), Args: args})
	if res.Error != "" {
		return nil, fmt.Errorf("search API: %s", res.Outcome)
	}
	docs, err := parse([]byte(res.Result))
	if err != nil {
		return nil, fmt.Errorf("search API answer: %w", err)
	}
	return docs, nil
}

// Query is the text of the last n user messages, oldest first.
func Query(messages json.RawMessage, n int) string {
	var msgs []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(messages, &msgs) != nil {
		return ""
	}
	var parts []string
	for i := len(msgs) - 1; i >= 0 && len(parts) < n; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		if t := strings.TrimSpace(text(msgs[i].Content)); t != "" {
			parts = append([]string{t}, parts...)
		}
	}
	return strings.Join(parts, " ")
}

// text is a message's content: a string, or the text of its parts.
func text(content json.RawMessage) string {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(content, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
		b.WriteByte(' ')
	}
	return b.String()
}

// parse reads {"documents": [...]} or the list alone; documents without
// content are dropped, a similarity outside 0..1 (or not a number) is
// clamped.
func parse(b []byte) ([]Document, error) {
	var docs []Document
	var wrapped struct {
		Documents []Document `json:"documents"`
	}
	if err := json.Unmarshal(b, &wrapped); err == nil && wrapped.Documents != nil {
		docs = wrapped.Documents
	} else if err := json.Unmarshal(b, &docs); err != nil {
		return nil, fmt.Errorf("not {\"documents\": [...]} nor a list of documents")
	}
	out := docs[:0]
	for _, d := range docs {
		if strings.TrimSpace(d.Content) == "" {
			continue
		}
		if math.IsNaN(d.Similarity) || d.Similarity < 0 {
			d.Similarity = 0
		}
		d.Similarity = math.Min(d.Similarity, 1)
		out = append(out, d)
	}
	return out, nil
}

// budget keeps the most similar documents, at most max, their content
// within bytes together (the last one cut on a character boundary).
func budget(docs []Document, max, bytes int) []Document {
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].Similarity > docs[j].Similarity })
	out := []Document{}
	left := bytes
	for _, d := range docs {
		if len(out) == max || left <= 0 {
			break
		}
		if len(d.Content) > left {
			c := d.Content[:left]
			for !utf8.ValidString(c) {
				c = c[:len(c)-1]
			}
			d.Content = c
		}
		left -= len(d.Content)
		out = append(out, d)
	}
	return out
}
