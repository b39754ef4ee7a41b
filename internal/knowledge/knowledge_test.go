package knowledge

import (
	"encoding/json"
	"strings"
	"testing"
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
