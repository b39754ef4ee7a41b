package gitops

import (
	"sort"
	"strings"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// absent stands for a field that is not there, in the three-way merge.
type absent struct{}

// Action is what a plan does with one field.
type Action int

const (
	// SetFile sets the files' value (or removes the field the files no
	// longer have).
	SetFile Action = iota
	// Keep leaves Vapi's value: it changed in Vapi since voicegate last
	// applied the field, and the files did not change it.
	Keep
	// Conflict is a field changed both in Vapi and in the files: apply
	// refuses it unless told to overwrite.
	Conflict
)

// Change is one field of a resource that differs between the files and
// Vapi.
type Change struct {
	// Path is the field's path ("model", "temperature").
	Path []string
	// Base is the value voicegate last applied, Current Vapi's, Want the
	// files' (each absent{} when the field is not there).
	Base, Current, Want any
	Action              Action
}

// Field names the path: "model.temperature".
func (c Change) Field() string { return strings.Join(c.Path, ".") }

// Diff compares a resource three ways, field by field, nested objects
// included: base is what voicegate last applied (hasBase false: never),
// cur what Vapi holds, want what the files say. Only the fields the files
// have, or had when last applied, are compared: a field set only in Vapi
// is Vapi's. For each differing field:
//
//   - changed only in the files (Vapi still holds the last applied
//     value): SetFile;
//   - changed only in Vapi (the files still say the last applied value):
//     Keep;
//   - changed on both sides: Conflict;
//   - on a resource voicegate never applied (no base): SetFile — the
//     files are the source, on the first apply as on any other.
//
// A list is one field (compared and replaced whole); inside a list an
// object of Vapi's matches the files' when it has every field the files
// give it with the same value (Vapi fills in defaults).
func Diff(base, cur, want vapiapi.Resource, hasBase bool) []Change {
	var out []Change
	var b any = absent{}
	if hasBase {
		b = map[string]any(base.WithoutServerFields())
	}
	diff(nil, b, map[string]any(cur.WithoutServerFields()), map[string]any(want.WithoutServerFields()), !hasBase, &out)
	return out
}

func diff(path []string, base, cur, want any, noBase bool, out *[]Change) {
	wm, wok := want.(map[string]any)
	cm, cok := cur.(map[string]any)
	if wok && cok {
		bm, _ := base.(map[string]any)
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := append(append([]string(nil), path...), k)
			diff(p, field(bm, k), field(cm, k), field(wm, k), noBase, out)
		}
		return
	}
	if covers(cur, want) {
		return
	}
	c := Change{Path: path, Base: base, Current: cur, Want: want}
	switch {
	case noBase:
		c.Action = SetFile
	case vapiapi.Equal(want, base):
		c.Action = Keep
	case covers(cur, base):
		c.Action = SetFile
	default:
		c.Action = Conflict
	}
	*out = append(*out, c)
}

// field is m[k], or absent{} (also when the parent is not an object).
func field(m map[string]any, k string) any {
	if m == nil {
		return absent{}
	}
	if v, ok := m[k]; ok {
		return v
	}
	return absent{}
}

// covers reports whether Vapi's value cur holds the files' value want:
// equal, except that an object inside a list may have more fields (Vapi's
// defaults).
func covers(cur, want any) bool {
	return coversAt(cur, want, false)
}

func coversAt(cur, want any, inList bool) bool {
	switch w := want.(type) {
	case absent:
		_, ok := cur.(absent)
		return ok
	case map[string]any:
		c, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if !inList && len(c) != len(w) {
			return false
		}
		for k, wv := range w {
			cv, ok := c[k]
			if !ok || !coversAt(cv, wv, inList) {
				return false
			}
		}
		return true
	case []any:
		c, ok := cur.([]any)
		if !ok || len(c) != len(w) {
			return false
		}
		for i := range w {
			if !coversAt(c[i], w[i], true) {
				return false
			}
		}
		return true
	}
	if _, ok := cur.(absent); ok {
		return false
	}
	return vapiapi.Equal(cur, want)
}

// Merge returns cur with the changes applied (with overwrite, conflicts
// too): the object to patch Vapi towards. Every field not changed —
// Vapi's own, those kept — stays as cur has it.
func Merge(cur vapiapi.Resource, changes []Change, overwrite bool) vapiapi.Resource {
	out := cur.Clone()
	for _, c := range changes {
		if c.Action == Keep || c.Action == Conflict && !overwrite {
			continue
		}
		setPath(out, c.Path, c.Want)
	}
	return out
}

// setPath sets (or, for absent{}, removes) the value at path; the objects
// on the way exist (Diff recursed through them).
func setPath(m map[string]any, path []string, v any) {
	for _, seg := range path[:len(path)-1] {
		next, ok := m[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[seg] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, ok := v.(absent); ok {
		delete(m, last)
		return
	}
	m[last] = vapiapi.Clone(v)
}
