package vapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// dropMistyped returns the schema paths ("call.status", "toolCallList.id")
// of every field of raw whose JSON value does not fit the Go type v
// declares for it — what encoding/json left out, reporting only the first
// (UnmarshalTypeError) — and sets each of those fields of v back to its
// zero value: encoding/json allocates a pointer before it finds that the
// value does not fit, so that a "cost" of "free" would read as a cost of
// 0, a customer of "x" as a customer without a number. Dropped means
// absent.
//
// It follows encoding/json's rules — keys matched exactly, else without
// case; null fits anything; a json.Unmarshaler (Timestamp) or
// json.RawMessage takes any value and reports its own problems — so that
// the paths it names are the fields that were dropped. A path is named
// once, whatever the number of array elements or duplicate keys it comes
// from; of duplicate keys, only the last one's field is reset (the one
// encoding/json kept).
//
// It runs only when decoding found a mistyped field, never on a
// well-formed message: the second pass over the body is paid by the
// messages that need it (a 1 MiB body of mistyped tool calls takes a few
// times what decoding it takes). raw is valid JSON (encoding/json read it
// whole before it reported a type error) and v the value it was decoded
// into.
func dropMistyped(raw []byte, v reflect.Value) []string {
	w := typeWalker{}
	w.value(bytes.TrimSpace(raw), v.Type(), v, nil, true)
	return w.out
}

type typeWalker struct {
	out  []string
	seen map[string]bool
}

// fieldPath is a field's schema path, built only when it is named.
type fieldPath struct {
	parent *fieldPath
	name   string
}

func (p *fieldPath) String() string {
	if p == nil {
		return ""
	}
	if p.parent == nil {
		return p.name
	}
	return p.parent.String() + "." + p.name
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
)

// value checks one JSON value against type t; slot is where it was
// decoded (invalid when there is none to reset), path its schema path
// (nil for the document), reset whether a field found mistyped is set
// back to zero.
func (w *typeWalker) value(raw []byte, t reflect.Type, slot reflect.Value, path *fieldPath, reset bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	mistyped := func() {
		p := path.String()
		if w.seen == nil {
			w.seen = map[string]bool{}
		}
		if !w.seen[p] {
			w.seen[p] = true
			w.out = append(w.out, p)
		}
		if reset && slot.IsValid() && slot.CanSet() {
			slot.SetZero()
		}
	}
	v := slot
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		if v.IsValid() {
			if v.IsNil() {
				v = reflect.Value{}
			} else {
				v = v.Elem()
			}
		}
	}
	if t == rawMessageType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if raw[0] != '"' {
			mistyped()
		}
		return
	}
	switch raw[0] {
	case '{':
		switch t.Kind() {
		case reflect.Struct:
			w.object(raw, t, v, path, reset)
		case reflect.Map:
			members(raw, func(_, m []byte) { w.value(m, t.Elem(), reflect.Value{}, path, false) })
		default:
			mistyped()
		}
	case '[':
		if k := t.Kind(); k == reflect.Slice || k == reflect.Array {
			i := 0
			elements(raw, func(e []byte) {
				var ev reflect.Value
				if v.IsValid() && i < v.Len() {
					ev = v.Index(i)
				}
				w.value(e, t.Elem(), ev, path, reset)
				i++
			})
			return
		}
		mistyped()
	case '"':
		if k := t.Kind(); k != reflect.String && !(k == reflect.Slice && t.Elem().Kind() == reflect.Uint8) {
			mistyped()
		}
	case 't', 'f':
		if t.Kind() != reflect.Bool {
			mistyped()
		}
	default: // a number
		if !numberFits(string(raw), t) {
			mistyped()
		}
	}
}

// numberFits reports whether encoding/json stores the number s in a value
// of type t (an integer field takes no fraction and no value beyond its
// range).
func numberFits(s string, t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err := strconv.ParseInt(s, 10, t.Bits())
		return err == nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err := strconv.ParseUint(s, 10, t.Bits())
		return err == nil
	case reflect.Float32, reflect.Float64:
		_, err := strconv.ParseFloat(s, t.Bits())
		return err == nil
	}
	return false
}

// object checks the members of a JSON object against struct t's fields
// (members voicegate does not decode are skipped); v is the struct
// decoded (invalid: none).
func (w *typeWalker) object(raw []byte, t reflect.Type, v reflect.Value, path *fieldPath, reset bool) {
	info := structOf(t)
	// A key given twice: only its last value is what encoding/json kept,
	// and only that one may be reset.
	var seen [2]uint64
	dup := len(info.fields) > 128
	members(raw, func(key, _ []byte) {
		if i, ok := info.match(key); ok && !dup {
			dup = seen[i/64]&(1<<(i%64)) != 0
			seen[i/64] |= 1 << (i % 64)
		}
	})
	var last []int // by field: the index of its last member
	if dup {
		last = make([]int, len(info.fields))
		n := 0
		members(raw, func(key, _ []byte) {
			if i, ok := info.match(key); ok {
				last[i] = n
			}
			n++
		})
	}
	n := 0
	members(raw, func(key, m []byte) {
		defer func() { n++ }()
		i, ok := info.match(key)
		if !ok {
			return
		}
		f := &info.fields[i]
		var fv reflect.Value
		if v.IsValid() {
			fv, _ = v.FieldByIndexErr(f.index) // through a nil embedded pointer: none
		}
		w.value(m, f.typ, fv, &fieldPath{path, f.name}, reset && (last == nil || last[i] == n))
	})
}

// members calls fn for every member of the JSON object raw (valid JSON),
// with its key as written (escapes kept).
func members(raw []byte, fn func(key, v []byte)) {
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != '}' {
		ks := i
		i = valueEnd(raw, i)
		key := raw[ks+1 : i-1]
		i = skipSpace(raw, i)
		i = skipSpace(raw, i+1) // :
		vs := i
		i = valueEnd(raw, i)
		fn(key, raw[vs:i])
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
}

// elements calls fn for every element of the JSON array raw (valid JSON).
func elements(raw []byte, fn func(v []byte)) {
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != ']' {
		vs := i
		i = valueEnd(raw, i)
		fn(raw[vs:i])
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i]
// (b is valid JSON).
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the enclosing value: a scalar ended
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	name  string
	typ   reflect.Type
	index []int
}

// structInfo is what encoding/json decodes into for a struct type.
type structInfo struct {
	fields []jsonField
	byName map[string]int
}

var structInfos sync.Map // reflect.Type → *structInfo

func structOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{fields: jsonFields(t), byName: map[string]int{}}
	for i, f := range si.fields {
		if _, ok := si.byName[f.name]; !ok {
			si.byName[f.name] = i
		}
	}
	structInfos.Store(t, si)
	return si
}

// match finds the field a member key (as written) decodes into: the exact
// name, else the first equal without case (as encoding/json does).
func (si *structInfo) match(key []byte) (int, bool) {
	if bytes.IndexByte(key, '\\') < 0 {
		if i, ok := si.byName[string(key)]; ok {
			return i, true
		}
		return matchField(si.fields, string(key))
	}
	var k string
	if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k) != nil {
		return -1, false
	}
	return matchField(si.fields, k)
}

// jsonFields returns the fields encoding/json decodes into for struct t:
// exported, named by their tag (else their Go name), those of embedded
// structs without a tag promoted.
func jsonFields(t reflect.Type) []jsonField {
	return appendFields(nil, t, nil)
}

func appendFields(out []jsonField, t reflect.Type, index []int) []jsonField {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = appendFields(out, ft, append(slices.Clone(index), i))
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type, index: append(slices.Clone(index), i)})
	}
	return out
}

// matchField finds the field a member key decodes into: the exact name,
// else the first equal without case (as encoding/json does).
func matchField(fields []jsonField, key string) (int, bool) {
	for i, f := range fields {
		if f.name == key {
			return i, true
		}
	}
	for i, f := range fields {
		if strings.EqualFold(f.name, key) {
			return i, true
		}
	}
	return -1, false
}
