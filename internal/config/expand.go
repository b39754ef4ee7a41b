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

// expandNode expands ${ENV} in every scalar value below n (keys included,
// comments never) and returns the problems found.
func expandNode(n *yaml.Node, getenv func(string) string) []string {
	var missing []string
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
		v, m := expandEnv(n.Value, getenv)
		if v != n.Value {
			n.Value = v
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				n.Tag = "" // a plain ${PORT} may resolve to a number
			}
		}
		missing = append(missing, m...)
	}
	for _, c := range n.Content {
		missing = append(missing, expandNode(c, getenv)...)
	}
	return missing
}
