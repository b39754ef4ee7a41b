package gitops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// StateFile is VapiAI/gitops' .vapi-state.<org>.json: per section
// ("assistants", "tools", "credentials", ...) a map of resource id to
// {"uuid": Vapi id}. voicegate reads the sections of its kinds and
// "credentials" (credential names), writes back the sections of its kinds
// ("phoneNumbers" is voicegate's: VapiAI/gitops keeps no phone numbers),
// and keeps every other section and field as it found them. The file is
// written as VapiAI/gitops writes it — keys sorted at every level, two
// spaces, a final newline — so that its diffs stay readable.
type StateFile struct {
	Path string
	// raw is the file's top level, each section as read.
	raw map[string]json.RawMessage
	// ids are the sections read: section -> id -> uuid.
	ids map[string]map[string]string
}

// StatePath is where VapiAI/gitops keeps the state file of the org folder
// dir: beside its "resources" folder (resources/<org>/ ->
// .vapi-state.<org>.json), or, for a folder elsewhere, beside the folder.
func StatePath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	org := filepath.Base(abs)
	parent := filepath.Dir(abs)
	if filepath.Base(parent) == "resources" {
		parent = filepath.Dir(parent)
	}
	return filepath.Join(parent, ".vapi-state."+org+".json")
}

// ReadState reads a state file; a file that does not exist is (nil, nil).
// A file that cannot be read is an error, never an empty state (which
// would create every resource again).
func ReadState(path string) (*StateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &StateFile{Path: path, raw: map[string]json.RawMessage{}, ids: map[string]map[string]string{}}
	if err := json.Unmarshal(b, &s.raw); err != nil {
		return nil, fmt.Errorf("state file %s is not a JSON object (%v): restore it, or remove it once you have checked that the org has no resources it maps", path, err)
	}
	sections := []string{"credentials"}
	for _, k := range Kinds() {
		sections = append(sections, k.Dir)
	}
	for _, sec := range sections {
		raw, ok := s.raw[sec]
		if !ok || string(raw) == "null" {
			continue
		}
		var entries map[string]json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("state file %s: section %q is not an object", path, sec)
		}
		m := map[string]string{}
		for id, e := range entries {
			var uuid string
			if json.Unmarshal(e, &uuid) != nil { // the legacy form is a bare string
				var obj struct {
					UUID string `json:"uuid"`
				}
				if json.Unmarshal(e, &obj) != nil || obj.UUID == "" {
					return nil, fmt.Errorf("state file %s: %s.%s has no uuid", path, sec, id)
				}
				uuid = obj.UUID
			}
			m[id] = uuid
		}
		s.ids[sec] = m
	}
	return s, nil
}

// NewState is an empty state file to be written at path.
func NewState(path string) *StateFile {
	return &StateFile{Path: path, raw: map[string]json.RawMessage{}, ids: map[string]map[string]string{}}
}

// IDs returns a section's map of resource id (or credential name) to
// Vapi id.
func (s *StateFile) IDs(section string) map[string]string {
	if s == nil {
		return nil
	}
	return s.ids[section]
}

// Has reports whether the file has a section (VapiAI/gitops drops the
// sections it does not know, such as phoneNumbers, when it writes).
func (s *StateFile) Has(section string) bool {
	if s == nil {
		return false
	}
	_, raw := s.raw[section]
	_, set := s.ids[section]
	return raw || set
}

// Set records the Vapi id of a resource ("" removes it).
func (s *StateFile) Set(section, id, uuid string) {
	m := s.ids[section]
	if m == nil {
		m = map[string]string{}
		s.ids[section] = m
	}
	if uuid == "" {
		delete(m, id)
		return
	}
	m[id] = uuid
}

// Encode returns the file's content: the sections of voicegate's kinds
// rewritten as {"id": {"uuid": ...}} (other fields of an entry kept),
// every other section as read.
func (s *StateFile) Encode() ([]byte, error) {
	top := map[string]any{}
	for k, raw := range s.raw {
		v, err := vapiapi.Decode(raw)
		if err != nil {
			return nil, err
		}
		top[k] = v
	}
	for _, k := range Kinds() {
		ids, ok := s.ids[k.Dir]
		if !ok && top[k.Dir] == nil {
			continue
		}
		old, _ := top[k.Dir].(map[string]any)
		sec := map[string]any{}
		ordered := make([]string, 0, len(ids))
		for id := range ids {
			ordered = append(ordered, id)
		}
		sort.Strings(ordered)
		for _, id := range ordered {
			entry := map[string]any{}
			if prev, ok := old[id].(map[string]any); ok {
				entry = prev
			}
			entry["uuid"] = ids[id]
			sec[id] = entry
		}
		top[k.Dir] = sec
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes the file atomically (a temporary file renamed over it), and
// only when its content changes. It reports whether it wrote.
func (s *StateFile) Write() (bool, error) {
	b, err := s.Encode()
	if err != nil {
		return false, err
	}
	old, err := os.ReadFile(s.Path)
	if err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(s.Path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.Path), filepath.Base(s.Path)+".tmp*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), s.Path)
}
