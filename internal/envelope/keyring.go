package envelope

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/lockfile"
)

// keyringFile is the on-disk and environment format of a keyring.
type keyringFile struct {
	Version int       `json:"version"`
	Current string    `json:"current"`
	Keys    []fileKey `json:"keys"`
	// LookupKey (base64, 32 bytes) keys the hashes that find records by
	// a caller's number without storing it. It is never rotated: the
	// hashes already stored would stop matching.
	LookupKey string `json:"lookup_key,omitempty"`
}

type fileKey struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Key     string    `json:"key"` // base64, 32 bytes
}

// Local is a keyring held in this process: read from a file (mode 0600)
// or from an environment variable, in the same JSON format. Safe for
// concurrent use.
type Local struct {
	mu      sync.RWMutex
	path    string // "" when read from the environment: read-only
	current string
	keys    map[string][]byte
	created map[string]time.Time
	lookup  []byte
	random  io.Reader
	now     func() time.Time
	// The file as last read, and when it was last looked at: a keyring
	// rotated by another process (voicegate keys rotate) is picked up
	// within RefreshInterval.
	modTime time.Time
	size    int64
	checked time.Time
	failed  error // the last refresh's, until one succeeds
}

// RefreshInterval is how often a file keyring looks for a change made by
// another process.
const RefreshInterval = time.Second

// RetireAfter is how long a key must have stopped being current before it
// may be retired: a running voicegate may still wrap with it until it sees
// the rotation (RefreshInterval).
const RetireAfter = time.Minute

var _ Keyring = (*Local)(nil)

// LoadFile reads the keyring at path, creating it with one fresh key (mode
// 0600, its directory 0700) when it does not exist yet. A file readable by
// others is refused: it holds every record's key.
func LoadFile(path string, random io.Reader, now func() time.Time) (*Local, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k := &Local{path: path, keys: map[string][]byte{}, created: map[string]time.Time{}, random: random, now: now}
		// Rotate writes under the lock and only over what it re-read: a
		// process that lost the race to create the file adopts the winner's.
		if _, err := k.Rotate(); err != nil {
			return nil, err
		}
		return k, nil
	}
	return OpenFile(path, random, now)
}

// OpenFile reads an existing keyring, never creating one: what operator
// commands use, so that a missing keyring (deleted, not yet restored) is
// an error, not a fresh key that would make every record unreadable.
func OpenFile(path string, random io.Reader, now func() time.Time) (*Local, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keyring %s does not exist: restore it from its backup (without it no record can be read)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	k, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	k.path, k.random, k.now = path, random, now
	if fi, err := os.Stat(path); err == nil {
		k.modTime, k.size, k.checked = fi.ModTime(), fi.Size(), now()
	}
	if k.lookup == nil {
		// A keyring written before lookup keys existed gets one.
		if err := k.addLookupKey(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// addLookupKey gives the keyring file a lookup key if it has none yet.
func (k *Local) addLookupKey() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := k.lockAndReload()
	if err != nil {
		return err
	}
	defer unlock()
	if k.lookup != nil {
		return nil // another process added it
	}
	lookup := make([]byte, KeySize)
	if _, err := io.ReadFull(k.random, lookup); err != nil {
		return fmt.Errorf("keyring: new lookup key: %w", err)
	}
	next := k.file()
	next.LookupKey = base64.StdEncoding.EncodeToString(lookup)
	if err := k.save(next); err != nil {
		return err
	}
	k.lookup = lookup
	k.noteSaved()
	return nil
}

// file is the keyring as it is saved. With k.mu held.
func (k *Local) file() keyringFile {
	f := keyringFile{Version: 1, Current: k.current}
	for id, key := range k.keys {
		f.Keys = append(f.Keys, fileKey{ID: id, Created: k.created[id], Key: base64.StdEncoding.EncodeToString(key)})
	}
	if k.lookup != nil {
		f.LookupKey = base64.StdEncoding.EncodeToString(k.lookup)
	}
	return f
}

// LookupKey returns the key of the hashes that find records by caller
// number (the same for every process sharing the keyring).
func (k *Local) LookupKey() []byte {
	k.refresh()
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lookup
}

// refresh re-reads the file when another process changed it (checked at
// most once per RefreshInterval). It fails closed: a keyring that can no
// longer be read (a rotation that left the file unreadable to this process,
// a damaged file) stops sealing, rather than go on with a key that may be
// retired meanwhile. Writes are renames, so a half-written file is never
// seen.
func (k *Local) refresh() error {
	if k.path == "" {
		return nil
	}
	k.mu.RLock()
	due := k.now().Sub(k.checked) >= RefreshInterval
	failed := k.failed
	k.mu.RUnlock()
	if !due {
		return failed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checked = k.now()
	fi, err := os.Stat(k.path)
	if err != nil {
		k.failed = fmt.Errorf("keyring %s: %w", k.path, err)
		return k.failed
	}
	if fi.ModTime().Equal(k.modTime) && fi.Size() == k.size {
		return k.failed
	}
	b, err := os.ReadFile(k.path)
	if err == nil {
		var n *Local
		if n, err = parse(b); err == nil {
			k.current, k.keys, k.created, k.lookup = n.current, n.keys, n.created, n.lookup
			k.modTime, k.size, k.failed = fi.ModTime(), fi.Size(), nil
			return nil
		}
	}
	k.failed = fmt.Errorf("keyring %s changed and can no longer be read (fix its owner and mode 0600 for this process): %w", k.path, err)
	return k.failed
}

// LoadEnv reads a keyring from the value of an environment variable (the
// file's JSON). It cannot be rotated from here: rotate where it is kept.
func LoadEnv(name, value string, random io.Reader) (*Local, error) {
	if value == "" {
		return nil, fmt.Errorf("keyring: environment variable %s is not set", name)
	}
	k, err := parse([]byte(value))
	if err != nil {
		return nil, fmt.Errorf("keyring in %s: %w", name, err)
	}
	if k.lookup == nil {
		return nil, fmt.Errorf("keyring in %s has no lookup_key: copy it again from a keyring file voicegate has opened since lookup keys were added", name)
	}
	k.random = random
	return k, nil
}

func parse(b []byte) (*Local, error) {
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not a keyring (JSON: %v)", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("keyring version %d is not 1", f.Version)
	}
	k := &Local{current: f.Current, keys: map[string][]byte{}, created: map[string]time.Time{}}
	for _, fk := range f.Keys {
		key, err := base64.StdEncoding.DecodeString(fk.Key)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("key %s is not %d bytes of base64", fk.ID, KeySize)
		}
		if _, dup := k.keys[fk.ID]; dup || fk.ID == "" {
			return nil, fmt.Errorf("key id %q is empty or repeated", fk.ID)
		}
		k.keys[fk.ID], k.created[fk.ID] = key, fk.Created
	}
	if _, ok := k.keys[k.current]; !ok {
		return nil, fmt.Errorf("current key %q is not in the keyring", k.current)
	}
	if f.LookupKey != "" {
		lookup, err := base64.StdEncoding.DecodeString(f.LookupKey)
		if err != nil || len(lookup) != KeySize {
			return nil, fmt.Errorf("lookup_key is not %d bytes of base64", KeySize)
		}
		k.lookup = lookup
	}
	return k, nil
}

// Current implements Keyring.
func (k *Local) Current() string {
	k.refresh() // a failure is reported by Wrap
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// IDs returns the key ids, oldest first.
func (k *Local) IDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if !k.created[ids[i]].Equal(k.created[ids[j]]) {
			return k.created[ids[i]].Before(k.created[ids[j]])
		}
		return ids[i] < ids[j]
	})
	return ids
}

// Wrap implements Keyring.
func (k *Local) Wrap(dek, aad []byte) (Wrapped, error) {
	if err := k.refresh(); err != nil {
		return Wrapped{}, err
	}
	k.mu.RLock()
	id, kek := k.current, k.keys[k.current]
	random := k.random
	k.mu.RUnlock()
	s, err := seal(kek, random, dek, wrapAAD(id, aad))
	if err != nil {
		return Wrapped{}, err
	}
	return Wrapped{KeyID: id, Sealed: s}, nil
}

// Unwrap implements Keyring.
func (k *Local) Unwrap(w Wrapped, aad []byte) ([]byte, error) {
	k.mu.RLock()
	kek, ok := k.keys[w.KeyID]
	k.mu.RUnlock()
	if !ok {
		k.refresh() // a key rotated in by another process
		k.mu.RLock()
		kek, ok = k.keys[w.KeyID]
		k.mu.RUnlock()
	}
	if !ok {
		return nil, fmt.Errorf("key %s: %w", w.KeyID, ErrKeyMissing)
	}
	dek, err := open(kek, w.Sealed, wrapAAD(w.KeyID, aad))
	if err != nil {
		return nil, fmt.Errorf("data key under key %s: %w", w.KeyID, err)
	}
	return dek, nil
}

// wrapAAD binds a wrapped key to its key id as well as to the record.
func wrapAAD(id string, aad []byte) []byte {
	return append([]byte("voicegate dek\x00"+id+"\x00"), aad...)
}

// Rotate adds a fresh key and makes it current, saving the file first
// (atomically: a crash leaves the old keyring or the new one). It returns
// the new key's id.
func (k *Local) Rotate() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.path == "" {
		return "", errors.New("keyring: read from the environment: rotate where it is kept, then restart")
	}
	unlock, err := k.lockAndReload()
	if err != nil {
		return "", err
	}
	defer unlock()
	key := make([]byte, KeySize+6)
	if _, err := io.ReadFull(k.random, key); err != nil {
		return "", fmt.Errorf("keyring: new key: %w", err)
	}
	now := k.now().UTC()
	// The id says when the key was made, and a random suffix keeps ids
	// unique, never reused after a key is retired.
	id := fmt.Sprintf("k%s-%x", now.Format("20060102"), key[KeySize:])
	key = key[:KeySize]
	if _, taken := k.keys[id]; taken {
		return "", fmt.Errorf("keyring: key id %s is taken (a 48-bit collision): rotate again", id)
	}
	lookup := k.lookup
	if lookup == nil {
		// A new keyring: its lookup key is made with its first key.
		lookup = make([]byte, KeySize)
		if _, err := io.ReadFull(k.random, lookup); err != nil {
			return "", fmt.Errorf("keyring: new lookup key: %w", err)
		}
	}
	next := k.file()
	next.Current = id
	next.LookupKey = base64.StdEncoding.EncodeToString(lookup)
	next.Keys = append(next.Keys, fileKey{ID: id, Created: now, Key: base64.StdEncoding.EncodeToString(key)})
	if err := k.save(next); err != nil {
		return "", err
	}
	k.keys[id], k.created[id], k.current, k.lookup = key, now, id, lookup
	k.noteSaved()
	return id, nil
}

// Retire removes key id. The caller first makes sure nothing still needs
// it (no record wrapped under it); the current key cannot be retired.
func (k *Local) Retire(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.path == "" {
		return errors.New("keyring: read from the environment: retire where it is kept, then restart")
	}
	unlock, err := k.lockAndReload()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := k.keys[id]; !ok {
		return fmt.Errorf("key %s: %w", id, ErrKeyMissing)
	}
	if id == k.current {
		return fmt.Errorf("key %s is current: rotate first", id)
	}
	if since := k.now().Sub(k.created[k.current]); since < RetireAfter {
		return fmt.Errorf("key %s stopped being current %s ago: a running voicegate may still wrap with it; retire it after %s", id, since.Round(time.Second), RetireAfter)
	}
	next := k.file()
	next.Keys = slices.DeleteFunc(next.Keys, func(f fileKey) bool { return f.ID == id })
	if err := k.save(next); err != nil {
		return err
	}
	clear(k.keys[id])
	delete(k.keys, id)
	delete(k.created, id)
	k.noteSaved()
	return nil
}

// lockAndReload takes the keyring's lock and re-reads the file under it,
// so that a write starts from what another process wrote, never from this
// process's older copy (two rotations at once would otherwise drop one).
// With k.mu held.
func (k *Local) lockAndReload() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	unlock, err := lockfile.Lock(k.path, 10*time.Second, time.Minute)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(k.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return unlock, nil // the first key: nothing to merge
	case err != nil:
		unlock()
		return nil, fmt.Errorf("keyring %s: %w", k.path, err)
	}
	n, err := parse(b)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("keyring %s: %w", k.path, err)
	}
	k.current, k.keys, k.created, k.lookup = n.current, n.keys, n.created, n.lookup
	return unlock, nil
}

// noteSaved records the file as this process wrote it.
func (k *Local) noteSaved() {
	if fi, err := os.Stat(k.path); err == nil {
		k.modTime, k.size = fi.ModTime(), fi.Size()
	}
}

// save writes f to the keyring's file: a temporary file (0600) synced and
// renamed over it, then the directory synced.
func (k *Local) save(f keyringFile) error {
	sort.Slice(f.Keys, func(i, j int) bool { return f.Keys[i].ID < f.Keys[j].ID })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyring-*")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
