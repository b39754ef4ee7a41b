package knowledge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/tools"
)

func TestQueryIsTheLatestUserMessages(t *testing.T) {
	conv := json.RawMessage(`[{"role":"system","content":"You help."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},
		{"role":"user","content":"What is the return policy"},{"role":"assistant","content":"For what?"},{"role":"user","content":[{"type":"text","text":"for shoes"}]}]`)
	if q := Query(conv, 2); q != "What is the return policy for shoes" {
		t.Fatalf("query %q", q)
	}
	if q := Query(conv, 1); q != "for shoes" {
		t.Fatalf("query %q", q)
	}
	for _, bad := range []string{`null`, `"x"`, `[{"role":"assistant","content":"only me"}]`, `not json`} {
		if q := Query(json.RawMessage(bad), 2); q != "" {
			t.Errorf("%s: %q", bad, q)
		}
	}
}

func TestParseAndBudget(t *testing.T) {
	for in, want := range map[string]string{
		`{"documents":[{"content":"a","similarity":0.2,"uuid":"1"},{"content":"bb","similarity":0.9,"uuid":"2"},{"content":"","similarity":1,"uuid":"3"}]}`: `[{"content":"bb","similarity":0.9,"uuid":"2"},{"content":"a","similarity":0.2,"uuid":"1"}]`,
		`[{"content":"x","similarity":7,"uuid":"u"},{"content":"y","similarity":-1}]`:                                                                       `[{"content":"x","similarity":1,"uuid":"u"},{"content":"y","similarity":0,"uuid":""}]`,
	} {
		docs, err := parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(budget(docs, 5, 1000))
		if string(b) != want {
			t.Errorf("%s:\n got %s\nwant %s", in, b, want)
		}
	}
	if _, err := parse([]byte(`{"results":[]}`)); err == nil {
		t.Error("an answer of another shape parsed")
	}
	long := []Document{{Content: strings.Repeat("é", 100), Similarity: 0.9}, {Content: "second", Similarity: 0.8}, {Content: "third", Similarity: 0.1}}
	got := budget(long, 2, 151)
	if len(got) != 2 || len(got[0].Content) != 150 || got[1].Content != "" && len(got[1].Content) > 1 {
		t.Fatalf("budget: %d documents, first %d bytes, second %q", len(got), len(got[0].Content), got[1].Content)
	}
}

func TestValidate(t *testing.T) {
	c := Config{}
	c.Complete()
	if p := c.Validate(); len(p) != 0 {
		t.Fatal(p)
	}
	c.MaxDocuments, c.MaxBytes = 50, 10
	if p := strings.Join(c.Validate(), "\n"); !strings.Contains(p, "max_documents: ") || !strings.Contains(p, "max_bytes: ") {
		t.Fatal(p)
	}
}

func TestValidateBases(t *testing.T) {
	api := func() *tools.Config { return &tools.Config{URL: "https://search.internal/kb"} }
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bases: map[string]Base{"a": {}, "b": {}}}, "default: name the base"},
		{Config{Bases: map[string]Base{"a": {}}, Default: "z"}, `default: "z" is not one of bases`},
		{Config{Bases: map[string]Base{"a": {}}, Assistants: map[string]string{"asst": "z"}}, `assistants.asst: "z" is not one of bases`},
		{Config{Bases: map[string]Base{"Bad Name": {}}}, "bases.Bad Name: a base's name"},
		{Config{Bases: map[string]Base{"a": {Language: "de"}}}, `bases.a.language: language "de" is not one of`},
		{Config{Bases: map[string]Base{"a": {SearchAPI: &tools.Config{URL: "ftp://x"}}}}, "bases.a.search_api.url"},
		{Config{Bases: map[string]Base{"a": {SearchAPI: &tools.Config{URL: "https://x", Async: true}}}}, "bases.a.search_api.async"},
		{Config{Default: "a"}, "bases: none declared"},
	} {
		c.cfg.Complete()
		if p := strings.Join(c.cfg.Validate(), "\n"); !strings.Contains(p, c.want) {
			t.Errorf("%+v: %q, want %q", c.cfg, p, c.want)
		}
	}
	ok := Config{Bases: map[string]Base{"handbook": {}, "search": {SearchAPI: api()}}, Default: "handbook", Assistants: map[string]string{"asst": "search", "quiet": ""}}
	ok.Complete()
	if p := ok.Validate(); len(p) != 0 {
		t.Fatal(p)
	}
	if ok.Bases["handbook"].Language != "en" || !ok.HasLocal() {
		t.Fatalf("%+v", ok)
	}
	one := Config{Bases: map[string]Base{"only": {}}}
	one.Complete()
	if one.Default != "only" {
		t.Fatalf("the one base is not the default: %q", one.Default)
	}
	if _, err := New(ok, Deps{}); err == nil {
		t.Fatal("a local base without a library was accepted")
	}
}
