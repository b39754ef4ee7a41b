package confval

import (
	"fmt"
	"io"
	"log/slog"
)

// Masked is a secret that never prints: fmt, slog, YAML and JSON show
// Redacted (or "" when unset). Use string(k) for the value.
type Masked string

// Redacted is what a Masked value prints as.
const Redacted = "<redacted>"

func (k Masked) show() string {
	if k == "" {
		return ""
	}
	return Redacted
}

// String never returns the key.
func (k Masked) String() string { return k.show() }

// GoString never returns the key (%#v).
func (k Masked) GoString() string { return `"` + k.show() + `"` }

// Format never prints the key, whatever the verb (%d or %x of a string
// would otherwise print it).
func (k Masked) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, k.GoString())
		return
	}
	io.WriteString(f, k.show())
}

// LogValue never logs the key.
func (k Masked) LogValue() slog.Value { return slog.StringValue(k.show()) }

// MarshalYAML never writes the key.
func (k Masked) MarshalYAML() (any, error) { return k.show(), nil }

// MarshalJSON never writes the key.
func (k Masked) MarshalJSON() ([]byte, error) { return []byte(`"` + k.show() + `"`), nil }
