// Package confval holds the value types components use in their
// configuration (a leaf package: components define their own config types
// with these, and internal/config composes them without a cycle).
package confval

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "2s", "150ms", "5m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings, with whole days ("30d",
// "1d12h") for retention periods; a bare number is ambiguous.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return DecodeError(n, "expected a duration such as \"2s\"")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return DecodeError(n, "%q is not a duration (use a unit, such as \"2s\", \"500ms\" or \"30d\")", n.Value)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration is time.ParseDuration with a leading whole number of days
// allowed ("30d", "1d12h"). A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) || s[i] != 'd' {
		return time.ParseDuration(s)
	}
	days, err := strconv.Atoi(s[:i])
	if err != nil || days > 100*366 {
		return 0, fmt.Errorf("%q: too many days", s)
	}
	v := time.Duration(days) * 24 * time.Hour
	if rest := s[i+1:]; rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		v += r
	}
	return v, nil
}

// MarshalYAML writes the duration as a string (whole days as "30d").
func (d Duration) MarshalYAML() (any, error) {
	if v := time.Duration(d); v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour)), nil
	}
	return time.Duration(d).String(), nil
}

// DecodeError is a value's decoding problem at n's line. It is a
// *yaml.TypeError, so that decoding goes on and every problem in the file
// is reported at once (any other error from an UnmarshalYAML stops the
// decoder at the first one).
func DecodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// MiB formats a byte count in mebibytes, for messages about memory.
func MiB(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// CleanPath reports whether p is a route path the HTTP mux serves as
// written: it starts with /, does not end with /, has no empty, "." or
// ".." segment, and no space, control character, ?, #, {, }, % or \.
func CleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("?#{}%\\", c) {
			return false
		}
	}
	return true
}
