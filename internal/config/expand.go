package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in src using getenv.
// A reference to an unset or empty variable without a default is an error, so that a
// missing secret is never silently replaced by an empty string. "$$" is a
// literal "$". Any other "$" is left alone.
func expandEnv(src string, getenv func(string) string) (string, []string) {
	var b strings.Builder
	var missing []string
	b.Grow(len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '$' || i+1 >= len(src) {
			b.WriteByte(c)
			continue
		}
		switch src[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(src[i+2:], '}')
		if end < 0 {
			b.WriteByte(c)
			continue
		}
		expr := src[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		val := getenv(name)
		switch {
		case val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			missing = append(missing, fmt.Sprintf("environment variable %s is not set", name))
		}
		i += 2 + end
	}
	return b.String(), missing
}

// unexpanded is a value whose ${ENV} could not be expanded: where it is,
// and why.
type unexpanded struct {
	path string // "vapi.auth[0].secrets[0]"
	line int
	msg  string
}

// expandNode expands ${ENV} in every scalar value below n (keys included,
// comments never) and returns the values it could not expand. path is
// n's path in the configuration ("" for the document).
func expandNode(n *yaml.Node, path string, getenv func(string) string) []unexpanded {
	var missing []unexpanded
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
		v, m := expandEnv(n.Value, getenv)
		if v != n.Value {
			n.Value = v
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				n.Tag = "" // a plain ${PORT} may resolve to a number
			}
		}
		for _, msg := range m {
			missing = append(missing, unexpanded{path: path, line: n.Line, msg: msg})
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			missing = append(missing, expandNode(k, path, getenv)...)
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			missing = append(missing, expandNode(n.Content[i+1], p, getenv)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			missing = append(missing, expandNode(c, fmt.Sprintf("%s[%d]", path, i), getenv)...)
		}
	default:
		for _, c := range n.Content {
			missing = append(missing, expandNode(c, path, getenv)...)
		}
	}
	return missing
}

// reportUnexpanded reports each value that could not be expanded, first,
// in place of the problems found with it: a secret reported as "0 bytes"
// after "VG_SECRET is not set" says the same thing twice, and only the
// cause helps.
func reportUnexpanded(e *ValidationError, missing []unexpanded) {
	if len(missing) == 0 {
		return
	}
	kept := e.Problems[:0]
	for _, p := range e.Problems {
		caused := false
		for _, m := range missing {
			if m.path != "" && (p.Path == m.path || strings.HasPrefix(p.Path, m.path+".") || strings.HasPrefix(p.Path, m.path+"[")) {
				caused = true
				break
			}
		}
		if !caused {
			kept = append(kept, p)
		}
	}
	causes := make([]Problem, 0, len(missing)+len(kept))
	for _, m := range missing {
		causes = append(causes, Problem{Path: m.path, Msg: fmt.Sprintf("line %d: %s", m.line, m.msg)})
	}
	e.Problems = append(causes, kept...)
}
