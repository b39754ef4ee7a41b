package confval

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// MinSecretLen is the shortest accepted shared secret, in bytes.
const MinSecretLen = 16

// Secret is one shared secret, optionally retired after NotAfter.
type Secret struct {
	Value    string
	NotAfter time.Time // zero: no expiry
}

// UnmarshalYAML accepts "value" or {value: ..., not_after: RFC3339}.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var notAfter string
	err := DecodeStringOrFields(n, &s.Value, map[string]*string{"value": &s.Value, "not_after": &notAfter},
		"secret (want value, not_after)", "a secret is a string or {value, not_after}")
	if err != nil || notAfter == "" {
		return err
	}
	t, err := time.Parse(time.RFC3339, notAfter)
	if err != nil {
		return DecodeError(n, "not_after %q is not an RFC 3339 time", notAfter)
	}
	s.NotAfter = t
	return nil
}

// DecodeStringOrFields decodes a value written either as a plain string
// (into *str) or as a mapping of the named string fields. in names the
// value in an unknown-key error ("unknown key \"x\" in <in>"); shape is
// the error for any other node.
func DecodeStringOrFields(n *yaml.Node, str *string, fields map[string]*string, in, shape string) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*str = n.Value
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			dst, ok := fields[k.Value]
			if !ok {
				return DecodeError(k, "unknown key %q in %s", k.Value, in)
			}
			*dst = v.Value
		}
		return nil
	}
	return DecodeError(n, "%s", shape)
}

// MarshalYAML never writes the secret's value.
func (s Secret) MarshalYAML() (any, error) { return "<redacted>", nil }

// ValidHeaderName reports whether s is a plain HTTP header name.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
