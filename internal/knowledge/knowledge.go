// Package knowledge answers Vapi's knowledge-base-request from inside the
// network: the latest user messages are the query, an internal search API
// (called like a tool: its configured URL and headers only, a timeout, a
// size cap) returns the passages, and the answer holds the best of them
// within a size budget. A failing search answers no documents: the
// assistant goes on without them.
package knowledge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Config is the "vapi.knowledge_base" section (off while SearchAPI is
// nil).
type Config struct {
	// SearchAPI is the internal search API, a tool entry without a name:
	// it receives {"query", "limit"} and answers {"documents": [{"content",
	// "similarity", "uuid"}]} (or the list alone).
	SearchAPI *tools.Config `yaml:"search_api"`
	// MaxDocuments is the most documents answered (default 3).
	MaxDocuments int `yaml:"max_documents"`
	// MaxBytes is the budget of the documents' content together (default
	// 4000): the model's context is not the place for a whole manual.
	MaxBytes int `yaml:"max_bytes"`
	// QueryMessages is how many of the latest user messages make the
	// query (default 2).
	QueryMessages int `yaml:"query_messages"`
}

// Defaults.
const (
	DefaultMaxDocuments  = 3
	DefaultMaxBytes      = 4000
	DefaultQueryMessages = 2
	toolName             = "knowledge-base"
)

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
	if c.SearchAPI != nil {
		c.SearchAPI.Name = toolName
		c.SearchAPI.Complete()
	}
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
	if c.SearchAPI != nil {
		p, _ := c.SearchAPI.Validate()
		for _, s := range p {
			probs = append(probs, "search_api."+s)
		}
		if c.SearchAPI.Async {
			probs = append(probs, "search_api.async: a search answers now")
		}
	}
	return probs
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

// Searcher answers knowledge-base-request.
type Searcher struct {
	cfg   Config
	tools *tools.Router
	log   *slog.Logger
}

// New builds the searcher of a validated, completed section (nil when no
// search API is configured).
func New(c Config, log *slog.Logger, observe tools.Observer) (*Searcher, error) {
	if c.SearchAPI == nil {
		return nil, nil
	}
	r, err := tools.New([]tools.Config{*c.SearchAPI}, log, observe)
	if err != nil {
		return nil, err
	}
	return &Searcher{cfg: c, tools: r, log: log}, nil
}

// Answer searches for the latest user messages of the conversation (the
// message's messagesOpenAIFormatted) and returns the documents to answer.
func (s *Searcher) Answer(ctx context.Context, callID string, messages json.RawMessage) Response {
	q := Query(messages, s.cfg.QueryMessages)
	if q == "" {
		return Response{Documents: []Document{}}
	}
	args, _ := json.Marshal(map[string]any{"query": q, "limit": s.cfg.MaxDocuments})
	res := s.tools.Call(ctx, tools.CallInfo{CallID: callID}, vapi.Invocation{Name: toolName, Args: args})
	if res.Error != "" {
		s.log.Warn("knowledge base search failed; answering no documents", logkey.CallID, callID, logkey.Outcome, res.Outcome)
		return Response{Documents: []Document{}}
	}
	docs, err := parse([]byte(res.Result))
	if err != nil {
		s.log.Warn("knowledge base search answer not understood; answering no documents", logkey.CallID, callID, logkey.Err, err)
		return Response{Documents: []Document{}}
	}
	return Response{Documents: budget(docs, s.cfg.MaxDocuments, s.cfg.MaxBytes)}
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
