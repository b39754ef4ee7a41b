package gitops

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

func TestParseMarkdown(t *testing.T) {
	r, err := ParseMarkdown([]byte("---\nname: Support\nmodel:\n  provider: openai\n  temperature: 0.7\n  messages:\n    - {role: system, content: old}\n    - {role: assistant, content: Hi}\n---\n\nYou are helpful.\n\nBe brief.\n"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := r["model"].(map[string]any)["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["content"] != "You are helpful.\n\nBe brief." || msgs[1].(map[string]any)["role"] != "assistant" {
		t.Fatalf("messages %v", msgs)
	}
	if r["model"].(map[string]any)["temperature"] != json.Number("0.7") {
		t.Fatalf("number %#v", r["model"])
	}
	// No body: the front matter as is; CRLF and a BOM are read.
	r, err = ParseMarkdown([]byte("\ufeff---\r\nname: A\r\n---\r\n"))
	if err != nil || r.Name() != "A" || r["model"] != nil {
		t.Fatalf("%v %v", r, err)
	}
	r, err = ParseMarkdown([]byte("---\n---\nPrompt only"))
	if err != nil || r.String("model.messages") != "" || len(r["model"].(map[string]any)["messages"].([]any)) != 1 {
		t.Fatalf("empty front matter: %v %v", r, err)
	}
	for _, bad := range []string{"", "name: A", "---\nname: A\n", "---\nmodel: gpt\n---\nprompt", "---\n- a\n---\n"} {
		if _, err := ParseMarkdown([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseYAML(t *testing.T) {
	r, err := ParseYAML([]byte(`
base: &b {provider: openai, temperature: 0.5}
model:
  <<: *b
  model: gpt-4o
n: 0x1F
big: 18446744073709551615
f: 1e3
when: 2026-01-02
off: 'off'
yes: yes
nothing: ~
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"base":{"provider":"openai","temperature":0.5},"big":18446744073709551615,"f":1000,"model":{"model":"gpt-4o","provider":"openai","temperature":0.5},"n":31,"nothing":null,"off":"off","when":"2026-01-02","yes":"yes"}`
	if b, _ := vapiapi.Marshal(r); string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	for _, bad := range []string{"", "- a\n- b", "a: 1\n---\nb: 2", "a: .nan", "a: 1\na: 2", "a: !custom x", "[a, b]: 1", "a: [\n"} {
		if _, err := ParseYAML([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A billion laughs is bounded.
	lol := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := range 8 {
		name := string(rune('b' + i))
		lol += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	if _, err := ParseYAML([]byte(lol)); err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("alias bomb: %v", err)
	}
}

// FuzzParse: the readers never panic, and what they accept is a JSON
// object that survives encoding; a Markdown body becomes the first,
// system, message.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"---\nname: A\n---\nHello",
		"---\r\nname: A\r\nmodel: {messages: [{role: user, content: x}]}\r\n---\r\n\r\nSystem\r\n",
		"---\n---\n",
		"name: A\nmodel: {temperature: 0.7, toolIds: [a ## comment]}\n",
		"a: &x {b: 1}\nc: *x\nd: {<<: *x, e: 2}\n",
		"---\nmodel: null\n---\nprompt",
		"\ufeff---\nname: \"\\u0000\"\n---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (vapiapi.Resource, error){ParseYAML, ParseMarkdown} {
			r, err := parse(data)
			if err != nil {
				continue
			}
			if r == nil {
				t.Fatal("nil resource without an error")
			}
			b, err := vapiapi.Marshal(r)
			if err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			back, err := vapiapi.DecodeResource(b)
			if err != nil || !vapiapi.Equal(back, r) {
				t.Fatalf("does not round-trip: %s (%v)", b, err)
			}
		}
		if r, err := ParseMarkdown(data); err == nil {
			if m, ok := r["model"].(map[string]any); ok {
				if msgs, ok := m["messages"].([]any); ok && len(msgs) > 0 {
					if first, ok := msgs[0].(map[string]any); ok && first["role"] == "system" {
						if c, _ := first["content"].(string); c != strings.TrimSpace(c) {
							t.Fatalf("system prompt not trimmed: %q", c)
						}
					}
				}
			}
		}
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("assistants/support.md", "---\nname: Support\n---\nHi")
	write("assistants/team/intake.yml", "name: Intake\n")
	write("assistants/support.2026.bkp.yml", "name: backup\n")
	write("tools/lookup.yaml", "type: function\n")
	write("simulations/personalities/p.yml", "name: p\n")
	write("README.md", "# org\n")
	write("tools/notes.txt", "x")
	locals, notes, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range locals {
		keys = append(keys, l.Key())
	}
	if strings.Join(keys, " ") != "tools/lookup assistants/support assistants/team/intake" {
		t.Fatalf("keys %v", keys)
	}
	if len(notes) != 3 {
		t.Fatalf("notes %q", notes)
	}
	write("assistants/support.yml", "name: Dup\n")
	write("tools/x.ts", "export default {}")
	write("squads/a b.yml", "name: s\n")
	write("squads/bad.yml", "name: [\n")
	write("tools/p.md", "---\ntype: function\n---\n")
	_, _, err = Load(dir)
	var pe *ProblemsError
	if !errors.As(err, &pe) || len(pe.Problems) != 5 {
		t.Fatalf("problems: %v", err)
	}
}

// TestDiff: the three-way merge's table.
func TestDiff(t *testing.T) {
	res := func(s string) vapiapi.Resource {
		r, err := vapiapi.DecodeResource([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name            string
		base, cur, want string
		noBase          bool
		expect          string // field:action, ...
	}{
		{"nothing changed", `{"a":1}`, `{"a":1,"id":"x","createdAt":"t"}`, `{"a":1}`, false, ""},
		{"files changed", `{"a":1}`, `{"a":1}`, `{"a":2}`, false, "a:set"},
		{"Vapi changed", `{"a":1}`, `{"a":3}`, `{"a":1}`, false, "a:keep"},
		{"both changed", `{"a":1}`, `{"a":3}`, `{"a":2}`, false, "a:conflict"},
		{"both changed alike", `{"a":1}`, `{"a":2}`, `{"a":2}`, false, ""},
		{"numbers by value", `{"a":1}`, `{"a":1.0}`, `{"a":1}`, false, ""},
		{"a field only in Vapi", `{}`, `{"b":{"c":1}}`, `{}`, false, ""},
		{"nested: only the field", `{"m":{"p":"x","t":1}}`, `{"m":{"p":"x","t":1,"temperature":0.9}}`, `{"m":{"p":"y","t":1}}`, false, "m.p:set"},
		{"nested conflict", `{"m":{"p":"x"}}`, `{"m":{"p":"z"}}`, `{"m":{"p":"y"}}`, false, "m.p:conflict"},
		{"removed in the files", `{"a":1,"b":2}`, `{"a":1,"b":2}`, `{"a":1}`, false, "b:set"},
		{"removed in the files, changed in Vapi", `{"a":1,"b":2}`, `{"a":1,"b":5}`, `{"a":1}`, false, "b:conflict"},
		{"added on both sides", `{}`, `{"a":1}`, `{"a":2}`, false, "a:conflict"},
		{"never applied: the files win", ``, `{"a":1,"m":{"x":1,"y":2}}`, `{"a":2,"m":{"x":3}}`, true, "a:set m.x:set"},
		{"a list is one field", `{"l":[1,2]}`, `{"l":[1,2]}`, `{"l":[1,2,3]}`, false, "l:set"},
		{"Vapi's defaults inside a list", `{"l":[{"a":1}]}`, `{"l":[{"a":1,"d":true}]}`, `{"l":[{"a":1}]}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var base vapiapi.Resource
			if !tc.noBase {
				base = res(tc.base)
			}
			changes := Diff(base, res(tc.cur), res(tc.want), !tc.noBase)
			var got []string
			for _, c := range changes {
				got = append(got, c.Field()+":"+map[Action]string{SetFile: "set", Keep: "keep", Conflict: "conflict"}[c.Action])
			}
			if strings.Join(got, " ") != strings.Replace(tc.expect, ", ", " ", -1) {
				t.Fatalf("got %q, want %q", got, tc.expect)
			}
		})
	}
	// Merge keeps what is not set, and removes what the files removed.
	cur := res(`{"id":"x","m":{"p":"x","temperature":0.9},"b":2,"keep":true}`)
	changes := Diff(res(`{"m":{"p":"x"},"b":2}`), cur, res(`{"m":{"p":"y"}}`), true)
	merged := Merge(cur, changes, false)
	if b, _ := vapiapi.Marshal(merged); string(b) != `{"id":"x","keep":true,"m":{"p":"y","temperature":0.9}}` {
		t.Fatalf("merged %s", b)
	}
	if p := vapiapi.TopLevelPatch(vapiapi.Assistant, cur, merged); len(p) != 2 || p["b"] != nil {
		t.Fatalf("patch %v", p)
	}
}
