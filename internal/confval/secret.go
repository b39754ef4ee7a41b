package confval

import (
	"fmt"
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
	switch n.Kind {
	case yaml.ScalarNode:
		s.Value = n.Value
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "value":
				s.Value = v.Value
			case "not_after":
				t, err := time.Parse(time.RFC3339, v.Value)
				if err != nil {
					return fmt.Errorf("line %d: not_after %q is not an RFC 3339 time", v.Line, v.Value)
				}
				s.NotAfter = t
			default:
				return fmt.Errorf("line %d: field %s not found in secret (want value, not_after)", k.Line, k.Value)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: a secret is a string or {value, not_after}", n.Line)
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
