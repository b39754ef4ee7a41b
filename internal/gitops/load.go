package gitops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/vapiapi"
	"go.yaml.in/yaml/v3"
)

// Kind is one folder of the layout VapiAI/gitops established, and the
// section of its state file with the same name.
type Kind struct {
	// Dir is the folder and the state file's section ("assistants").
	Dir string
	// API is the resource's kind in Vapi's API.
	API vapiapi.Kind
	// Label names a resource of the kind in messages ("assistant").
	Label string
}

// Kinds are the folders voicegate manages, in the order resources are
// applied (a resource after those it references; a reference the other
// way round is set once its target exists).
func Kinds() []Kind {
	return []Kind{
		{Dir: "tools", API: vapiapi.Tool, Label: "tool"},
		{Dir: "structuredOutputs", API: vapiapi.StructuredOutput, Label: "structured output"},
		{Dir: "assistants", API: vapiapi.Assistant, Label: "assistant"},
		{Dir: "squads", API: vapiapi.Squad, Label: "squad"},
		{Dir: "phoneNumbers", API: vapiapi.PhoneNumber, Label: "phone number"},
	}
}

func kindByDir(dir string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Dir == dir {
			return k, true
		}
	}
	return Kind{}, false
}

// Local is a resource the files describe.
type Local struct {
	Kind Kind
	// ID is the file's path below its kind's folder, without extension
	// ("support", or "team/intake"): the name references use and the
	// state file's key.
	ID string
	// Path is the file (or "tools: in the config" for a generated tool).
	Path string
	// Body is the Vapi object the file holds, as decoded JSON (numbers
	// json.Number).
	Body vapiapi.Resource
	// Generated is a tool generated from voicegate's tools config.
	Generated bool
}

// Key names the resource: "assistants/support".
func (l *Local) Key() string { return l.Kind.Dir + "/" + l.ID }

// Bounds of what is read.
const (
	maxFileBytes = 1 << 20
	maxFiles     = 5000
	// maxYAMLNodes bounds the values one file expands to (aliases can
	// multiply a small file).
	maxYAMLNodes = 200000
)

// idRE is a resource id: path segments of letters, digits, '.', '_' and
// '-' (the state file's keys and what the output names).
var idRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$`)

// backupRE is a dashboard backup VapiAI/gitops writes beside a file in a
// conflict: reference material, not a resource.
var backupRE = regexp.MustCompile(`\.(bkp|dashboard)\.(yml|yaml|md)$`)

// Load reads the resources of an org's folder: assistants/ (.yml, .yaml,
// or .md whose front matter is the assistant and whose body is its system
// prompt), tools/, squads/, structuredOutputs/ and phoneNumbers/, each
// file one resource named by its path without the extension. notes are
// what was skipped (other folders, other files). Every problem is
// reported at once.
func Load(dir string) (locals []*Local, notes []string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory", dir)
	}
	top, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var probs []string
	files := 0
	for _, e := range top {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		kind, ok := kindByDir(name)
		if !ok || !e.IsDir() {
			if e.IsDir() {
				notes = append(notes, fmt.Sprintf("%s/: not a kind voicegate manages: skipped", name))
			}
			continue
		}
		root := filepath.Join(dir, name)
		seen := map[string]string{}
		werr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			base := d.Name()
			if p != root && strings.HasPrefix(base, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			ext := filepath.Ext(base)
			switch {
			case backupRE.MatchString(base):
				notes = append(notes, rel+": a dashboard backup copy: skipped")
				return nil
			case ext == ".ts":
				probs = append(probs, rel+": TypeScript resources are not read by voicegate: write it as .yml")
				return nil
			case ext == ".md" && kind.Dir != "assistants":
				probs = append(probs, rel+": only assistants are written as .md (front matter and system prompt)")
				return nil
			case ext != ".yml" && ext != ".yaml" && ext != ".md":
				notes = append(notes, rel+": not .yml, .yaml or .md: skipped")
				return nil
			}
			if files++; files > maxFiles {
				return fmt.Errorf("more than %d resource files", maxFiles)
			}
			relKind, _ := filepath.Rel(root, p)
			id := strings.TrimSuffix(filepath.ToSlash(relKind), ext)
			if !idRE.MatchString(id) || strings.Contains(id, "..") {
				probs = append(probs, fmt.Sprintf("%s: %q is not a resource id (letters, digits, '.', '_', '-', folders with '/')", rel, id))
				return nil
			}
			if prev, dup := seen[id]; dup {
				probs = append(probs, fmt.Sprintf("%s and %s: both are %s %q", prev, rel, kind.Label, id))
				return nil
			}
			seen[id] = rel
			data, err := readCapped(p)
			if err != nil {
				probs = append(probs, rel+": "+err.Error())
				return nil
			}
			var body vapiapi.Resource
			if ext == ".md" {
				body, err = ParseMarkdown(data)
			} else {
				body, err = ParseYAML(data)
			}
			if err != nil {
				probs = append(probs, rel+": "+err.Error())
				return nil
			}
			locals = append(locals, &Local{Kind: kind, ID: id, Path: rel, Body: body})
			return nil
		})
		if werr != nil {
			return nil, nil, werr
		}
	}
	if len(probs) > 0 {
		return nil, notes, &ProblemsError{What: "the files", Problems: probs}
	}
	sort.SliceStable(locals, func(i, j int) bool {
		return order(locals[i].Kind) < order(locals[j].Kind) || order(locals[i].Kind) == order(locals[j].Kind) && locals[i].ID < locals[j].ID
	})
	return locals, notes, nil
}

func order(k Kind) int {
	for i, v := range Kinds() {
		if v.Dir == k.Dir {
			return i
		}
	}
	return len(Kinds())
}

func readCapped(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return b, nil
}

// ProblemsError lists every problem found in one pass.
type ProblemsError struct {
	What     string
	Problems []string
}

func (e *ProblemsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem", e.What, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p)
	}
	return b.String()
}

var errNotUTF8 = errors.New("not UTF-8 text")

// ParseYAML reads a resource file: one YAML mapping, turned into the JSON
// Vapi's API takes (numbers as json.Number, dates kept as written).
func ParseYAML(data []byte) (vapiapi.Resource, error) {
	if !utf8.Valid(data) {
		return nil, errNotUTF8
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: a resource file holds one YAML mapping")
		}
		return nil, fmt.Errorf("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: a resource file holds one mapping")
	}
	v, err := toJSON(&doc)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, errors.New("empty: a resource file holds one YAML mapping")
		}
		return nil, errors.New("not a mapping: a resource file holds one Vapi object")
	}
	return m, nil
}

// ParseMarkdown reads an assistant written as Markdown: YAML front matter
// between "---" lines is the assistant; the rest, trimmed, is its system
// prompt, which becomes model.messages[0] ({"role": "system"}) in place of
// any system message the front matter has, as VapiAI/gitops does.
func ParseMarkdown(data []byte) (vapiapi.Resource, error) {
	if !utf8.Valid(data) {
		return nil, errNotUTF8
	}
	s := strings.TrimPrefix(string(data), "\ufeff")
	first, rest, ok := cutLine(s)
	if !ok || strings.TrimRight(first, "\r") != "---" {
		return nil, errors.New(`no front matter: a .md assistant starts with a "---" line, its YAML, and another "---" line`)
	}
	var front strings.Builder
	for {
		if rest == "" {
			return nil, errors.New(`the front matter has no closing "---" line`)
		}
		var line string
		line, rest, _ = cutLine(rest)
		if strings.TrimRight(line, "\r") == "---" {
			break
		}
		front.WriteString(line + "\n")
	}
	var body vapiapi.Resource
	if strings.TrimSpace(front.String()) == "" {
		body = vapiapi.Resource{}
	} else {
		var err error
		if body, err = ParseYAML([]byte(front.String())); err != nil {
			return nil, fmt.Errorf("front matter: %w", err)
		}
	}
	prompt := strings.TrimSpace(rest)
	if prompt == "" {
		return body, nil
	}
	model, ok := body["model"].(map[string]any)
	if !ok {
		if _, present := body["model"]; present && body["model"] != nil {
			return nil, errors.New("front matter: model is not a mapping, so the system prompt cannot go in model.messages")
		}
		model = map[string]any{}
	}
	msgs := []any{map[string]any{"role": "system", "content": prompt}}
	if old, ok := model["messages"].([]any); ok {
		for _, m := range old {
			if mm, ok := m.(map[string]any); ok && mm["role"] == "system" {
				continue
			}
			msgs = append(msgs, m)
		}
	}
	model["messages"] = msgs
	body["model"] = model
	return body, nil
}

// cutLine splits s after its first line (without the "\n").
func cutLine(s string) (line, rest string, ok bool) {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", s != ""
}

// toJSON turns a YAML node into decoded JSON. Mapping keys are strings;
// "<<" merges are applied; aliases are expanded within maxYAMLNodes.
func toJSON(root *yaml.Node) (any, error) {
	budget := maxYAMLNodes
	var conv func(n *yaml.Node, depth int) (any, error)
	conv = func(n *yaml.Node, depth int) (any, error) {
		if budget--; budget < 0 {
			return nil, fmt.Errorf("expands to more than %d values", maxYAMLNodes)
		}
		if depth > 200 {
			return nil, errors.New("nested more than 200 levels")
		}
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil, nil
			}
			return conv(n.Content[0], depth+1)
		case yaml.AliasNode:
			if n.Alias == nil {
				return nil, fmt.Errorf("line %d: unknown alias", n.Line)
			}
			return conv(n.Alias, depth+1)
		case yaml.SequenceNode:
			out := make([]any, 0, len(n.Content))
			for _, c := range n.Content {
				v, err := conv(c, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		case yaml.MappingNode:
			out := map[string]any{}
			explicit := map[string]bool{}
			var merges []map[string]any
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, vn := n.Content[i], n.Content[i+1]
				if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
					mv, err := conv(vn, depth+1)
					if err != nil {
						return nil, err
					}
					switch t := mv.(type) {
					case map[string]any:
						merges = append(merges, t)
					case []any:
						for _, e := range t {
							em, ok := e.(map[string]any)
							if !ok {
								return nil, fmt.Errorf("line %d: << merges mappings only", k.Line)
							}
							merges = append(merges, em)
						}
					default:
						return nil, fmt.Errorf("line %d: << merges mappings only", k.Line)
					}
					continue
				}
				if k.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: a key is not a plain value", k.Line)
				}
				if explicit[k.Value] {
					return nil, fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
				}
				v, err := conv(vn, depth+1)
				if err != nil {
					return nil, err
				}
				explicit[k.Value] = true
				out[k.Value] = v
			}
			for _, m := range merges {
				for k, v := range m {
					if _, ok := out[k]; !ok {
						out[k] = vapiapi.Clone(v)
					}
				}
			}
			return out, nil
		case yaml.ScalarNode:
			return scalar(n)
		}
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return conv(root, 0)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %q is not a boolean", n.Line, n.Value)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
		return nil, fmt.Errorf("line %d: %q is too large an integer", n.Line, n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %q is not a number", n.Line, n.Value)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("line %d: %s has no JSON form", n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return nil, fmt.Errorf("line %d: tag %s is not supported", n.Line, n.Tag)
}
