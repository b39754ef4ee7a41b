package vapiapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"strings"
)

// Kind is a kind of Vapi resource, named by its API path.
type Kind string

// The kinds voicegate manages.
const (
	Assistant        Kind = "assistant"
	Tool             Kind = "tool"
	PhoneNumber      Kind = "phone-number"
	Squad            Kind = "squad"
	StructuredOutput Kind = "structured-output"
	Credential       Kind = "credential"
)

// Kinds lists every kind the client knows.
func Kinds() []Kind {
	return []Kind{Assistant, Tool, PhoneNumber, Squad, StructuredOutput, Credential}
}

// Valid reports whether k is a kind the client knows.
func (k Kind) Valid() bool {
	for _, v := range Kinds() {
		if k == v {
			return true
		}
	}
	return false
}

// Resource is a Vapi object as JSON decodes it: objects are map[string]any,
// arrays []any, numbers json.Number (so that a number and every field
// voicegate does not model round-trip exactly).
type Resource map[string]any

// ID is the resource's "id" ("" when absent).
func (r Resource) ID() string { s, _ := r["id"].(string); return s }

// Name is the resource's "name" ("" when absent).
func (r Resource) Name() string { s, _ := r["name"].(string); return s }

// CreatedAt is the resource's "createdAt" as Vapi wrote it.
func (r Resource) CreatedAt() string { s, _ := r["createdAt"].(string); return s }

// Clone returns a deep copy of r.
func (r Resource) Clone() Resource {
	if r == nil {
		return nil
	}
	return Clone(map[string]any(r)).(map[string]any)
}

// Lookup returns the value at a dotted path ("server.url") and whether it
// is there.
func (r Resource) Lookup(path string) (any, bool) {
	var cur any = map[string]any(r)
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String returns the string at a dotted path ("" when absent or not a
// string).
func (r Resource) String(path string) string {
	v, _ := r.Lookup(path)
	s, _ := v.(string)
	return s
}

// Set sets the value at a dotted path, creating the objects on the way
// (an object in the way that is not one is replaced).
func (r Resource) Set(path string, v any) {
	segs := strings.Split(path, ".")
	m := map[string]any(r)
	for _, seg := range segs[:len(segs)-1] {
		next, ok := m[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[seg] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
}

// serverFields are the fields Vapi assigns: never sent back, never
// compared.
var serverFields = map[string]bool{"id": true, "orgId": true, "createdAt": true, "updatedAt": true,
	"isDeleted": true, "isServerUrlSecretSet": true, "analyticsMetadata": true}

// ServerField reports whether a top-level field is assigned by Vapi (id,
// orgId, createdAt, updatedAt and computed fields): such a field is never
// sent in a create or an update, and never compared.
func ServerField(name string) bool { return serverFields[name] }

// WithoutServerFields returns a shallow copy of r without the fields Vapi
// assigns.
func (r Resource) WithoutServerFields() Resource {
	out := make(Resource, len(r))
	for k, v := range r {
		if !serverFields[k] {
			out[k] = v
		}
	}
	return out
}

// Clone deep-copies a decoded JSON value.
func Clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = Clone(e)
		}
		return out
	case Resource:
		return t.Clone()
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = Clone(e)
		}
		return out
	}
	return v
}

// Equal compares two decoded JSON values: numbers by value (0.5 and 5e-1
// are equal), objects by their keys and values, arrays in order.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := asMap(b)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	case Resource:
		return Equal(map[string]any(x), b)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numberEqual(x, y)
	case nil:
		return b == nil
	}
	if _, ok := b.(map[string]any); ok {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func asMap(v any) (map[string]any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t, true
	case Resource:
		return t, true
	}
	return nil, false
}

func numberEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

// Decode reads one JSON value from b keeping numbers as json.Number.
func Decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// DecodeResource reads a JSON object.
func DecodeResource(b []byte) (Resource, error) {
	v, err := Decode(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object")
	}
	return m, nil
}

// Marshal encodes v as compact JSON without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// WebhookURL is the URL Vapi calls to reach this voicegate: public_url,
// with path appended when public_url has no path of its own ("" when
// public_url is not set).
func WebhookURL(publicURL, path string) string {
	if publicURL == "" {
		return ""
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return publicURL
	}
	if u.Path == "" || u.Path == "/" {
		return strings.TrimRight(publicURL, "/") + path
	}
	return publicURL
}

// SameURL reports whether two URLs name the same endpoint: scheme and host
// compared without case, a default port the same as none, a trailing
// slash ignored.
func SameURL(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	na, ok1 := normURL(a)
	nb, ok2 := normURL(b)
	if !ok1 || !ok2 {
		return a == b
	}
	return na == nb
}

func normURL(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	q := ""
	if u.RawQuery != "" {
		q = "?" + u.RawQuery
	}
	return scheme + "://" + host + p + q, true
}
