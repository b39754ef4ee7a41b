package gitops

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// maxShown is how many characters of a value a plan shows.
const maxShown = 100

// print writes the plan and returns its counts.
func (e *engine) print() Summary {
	w := e.o.Out
	var sum Summary
	fmt.Fprintf(w, "Vapi plan for org %s (%s), against %s\n", e.org, e.o.Dir, e.o.API.BaseURL())
	if e.state != nil {
		fmt.Fprintf(w, "state file: %s\n", e.state.Path)
	} else {
		fmt.Fprintf(w, "state file: none at %s (voicegate's store keeps the ids)\n", e.statePath())
	}
	for _, n := range e.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	detailed := true // a blank line after the header
	for _, it := range e.items {
		var head string
		var lines []string
		name := it.kind.Label + " " + it.id
		if it.vapiID != "" {
			name += " (" + safe(it.vapiID) + ")"
		}
		if it.local != nil && it.local.Generated {
			name += " [from voicegate's tools config]"
		}
		for _, n := range it.notes {
			lines = append(lines, "    ("+n+")")
		}
		switch {
		case it.op == opCreate:
			sum.Create++
			head = "+ " + name + ": create"
			for _, f := range flatten(nil, it.want) {
				lines = append(lines, fmt.Sprintf("    %s: %s", strings.Join(f.path, "."), show(f.path, f.v)))
			}
		case it.op == opDelete:
			sum.Delete++
			head = "- " + name + ": delete (its file is gone; --prune)"
		case it.op == opOrphan:
			sum.Orphans++
			head = "  " + name + ": its file is gone: kept (apply --prune deletes it)"
		case it.op == opGone:
			head = "  " + name + ": its file and its Vapi resource are gone: apply forgets it"
		case it.conflicts() > 0:
			sum.Conflict++
			head = "! " + name + ": conflict"
		case it.op == opUpdate:
			sum.Update++
			head = "~ " + name + ": update"
		default:
			sum.Unchanged++
			head = "= " + name + ": no changes"
		}
		for _, c := range it.changes {
			f := c.Field()
			switch c.Action {
			case SetFile:
				lines = append(lines, fmt.Sprintf("    %s: %s -> %s", f, show(c.Path, c.Current), show(c.Path, c.Want)))
			case Keep:
				lines = append(lines, fmt.Sprintf("    %s: %s kept (changed in Vapi since the last apply; the files still say %s)", f, show(c.Path, c.Current), show(c.Path, c.Want)))
			case Conflict:
				lines = append(lines, fmt.Sprintf("    %s: CONFLICT: the files say %s, Vapi says %s (last applied: %s)", f, show(c.Path, c.Want), show(c.Path, c.Current), show(c.Path, c.Base)))
			}
		}
		if detailed || len(lines) > 0 {
			fmt.Fprintln(w)
		}
		detailed = len(lines) > 0
		fmt.Fprintln(w, head)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintf(w, "\nPlan: %d to create, %d to update, %d to delete, %d unchanged", sum.Create, sum.Update, sum.Delete, sum.Unchanged)
	if sum.Conflict > 0 {
		fmt.Fprintf(w, ", %d with conflicts (apply refuses them; --overwrite applies the files' values)", sum.Conflict)
	}
	if sum.Orphans > 0 {
		fmt.Fprintf(w, ", %d without a file kept", sum.Orphans)
	}
	fmt.Fprintln(w, ".")
	return sum
}

type leaf struct {
	path []string
	v    any
}

// flatten lists the leaves of an object (a list is a leaf), by path.
func flatten(path []string, v any) []leaf {
	m, ok := v.(map[string]any)
	if r, isRes := v.(vapiapi.Resource); isRes {
		m, ok = r, true
	}
	if !ok || (len(m) == 0 && len(path) > 0) {
		return []leaf{{path, v}}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []leaf
	for _, k := range keys {
		out = append(out, flatten(append(append([]string(nil), path...), k), m[k])...)
	}
	return out
}

// secretWords mark a field whose value a plan does not show.
var secretWords = []string{"secret", "token", "password", "apikey", "api_key", "authorization", "privatekey", "private_key"}

func secretField(path []string) bool {
	for _, p := range path {
		l := strings.ToLower(p)
		for _, w := range secretWords {
			if strings.Contains(l, w) {
				return true
			}
		}
	}
	return false
}

// show is a value as a plan prints it: JSON on one line, shortened; a
// placeholder as is; a secret's never.
func show(path []string, v any) string {
	switch t := v.(type) {
	case absent:
		return "(none)"
	case string:
		if isPlaceholder(t) {
			return t
		}
	}
	if secretField(path) {
		return "(secret, not shown)"
	}
	b, err := vapiapi.Marshal(v)
	if err != nil {
		return "?"
	}
	s := string(b)
	if utf8.RuneCountInString(s) > maxShown {
		n := utf8.RuneCountInString(s)
		r := []rune(s)
		s = string(r[:maxShown-12]) + fmt.Sprintf("… (%d chars)", n)
	}
	return s
}

// safe keeps an id from Vapi printable.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
