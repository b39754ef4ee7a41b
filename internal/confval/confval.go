// Package confval holds the value types components use in their
// configuration (a leaf package: components define their own config types
// with these, and internal/config composes them without a cycle).
package confval

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "2s", "150ms", "5m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings only: a bare number is ambiguous.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return DecodeError(n, "expected a duration such as \"2s\"")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return DecodeError(n, "%q is not a duration (use a unit, such as \"2s\" or \"500ms\")", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// DecodeError is a value's decoding problem at n's line. It is a
// *yaml.TypeError, so that decoding goes on and every problem in the file
// is reported at once (any other error from an UnmarshalYAML stops the
// decoder at the first one).
func DecodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// MiB formats a byte count in mebibytes, for messages about memory.
func MiB(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
