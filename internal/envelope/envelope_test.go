package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func keyring(t *testing.T) (*Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys", "keyring.json")
	k, err := LoadFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

func TestSealOpenBindsTheRecord(t *testing.T) {
	k, _ := keyring(t)
	aad := []byte("record r1 call c1")
	s, err := Seal(k, rand.Reader, []byte("my number is +15551234567"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Payload, []byte("5551234567")) || s.Key.KeyID != k.Current() {
		t.Fatalf("sealed: %+v", s)
	}
	pt, err := Open(k, s, aad)
	if err != nil || string(pt) != "my number is +15551234567" {
		t.Fatalf("open: %q %v", pt, err)
	}
	// Moved to another record: neither the key nor the payload opens.
	if _, err := Open(k, s, []byte("record r2 call c1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("another record's additional data: %v", err)
	}
	// A flipped byte anywhere is refused, never garbage.
	for _, flip := range []func(*Sealed){
		func(s *Sealed) { s.Payload[len(s.Payload)-1] ^= 1 },
		func(s *Sealed) { s.Key.Sealed[20] ^= 1 },
	} {
		c := Sealed{Key: Wrapped{KeyID: s.Key.KeyID, Sealed: bytes.Clone(s.Key.Sealed)}, Payload: bytes.Clone(s.Payload)}
		flip(&c)
		if _, err := Open(k, c, aad); !errors.Is(err, ErrOpen) {
			t.Errorf("altered envelope opened: %v", err)
		}
	}
	// A wrapped key relabelled with another key id does not open either.
	old := s.Key.KeyID
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	c := s
	c.Key.KeyID = k.Current()
	if _, err := Open(k, c, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("relabelled key id opened: %v", err)
	}
	if pt, err := Open(k, s, aad); err != nil || len(pt) == 0 || s.Key.KeyID != old {
		t.Fatalf("a record under the previous key no longer opens after rotation: %v", err)
	}
}

func TestRotateRewrapRetire(t *testing.T) {
	k, path := keyring(t)
	aad := []byte("r1")
	s, err := Seal(k, rand.Reader, []byte("payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	first := k.Current()
	second, err := k.Rotate()
	if err != nil || second == first || k.Current() != second {
		t.Fatalf("rotate: %q %v", second, err)
	}
	// A restart reads the same keyring.
	clock := time.Now()
	again, err := LoadFile(path, rand.Reader, func() time.Time { return clock })
	if err != nil || again.Current() != second || len(again.IDs()) != 2 || again.IDs()[0] != first {
		t.Fatalf("reloaded: %v %v %v", again.IDs(), again.Current(), err)
	}
	w, err := Rewrap(again, s.Key, aad)
	if err != nil || w.KeyID != second {
		t.Fatalf("rewrap: %+v %v", w, err)
	}
	if same, _ := Rewrap(again, w, aad); !bytes.Equal(same.Sealed, w.Sealed) {
		t.Fatal("rewrapping a current key must change nothing")
	}
	if err := again.Retire(second); err == nil {
		t.Fatal("the current key was retired")
	}
	if err := again.Retire(first); err == nil || !strings.Contains(err.Error(), "may still wrap with it") {
		t.Fatalf("a key current a moment ago was retired: %v", err)
	}
	clock = clock.Add(RetireAfter + time.Second)
	if err := again.Retire(first); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(again, s, aad); !errors.Is(err, ErrKeyMissing) || !strings.Contains(err.Error(), first) {
		t.Fatalf("a record under a retired key: %v (want ErrKeyMissing naming %s)", err, first)
	}
	if pt, err := Open(again, Sealed{Key: w, Payload: s.Payload}, aad); err != nil || string(pt) != "payload" {
		t.Fatalf("the rewrapped record: %q %v", pt, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file mode %v %v", fi.Mode(), err)
	}
}

func TestKeyringRefusals(t *testing.T) {
	_, path := keyring(t)
	os.Chmod(path, 0o644)
	if _, err := LoadFile(path, rand.Reader, time.Now); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable keyring: %v", err)
	}
	for _, v := range []string{"", "{", `{"version":2}`, `{"version":1,"current":"k","keys":[]}`, `{"version":1,"current":"k","keys":[{"id":"k","key":"c2hvcnQ="}]}`} {
		if _, err := LoadEnv("VOICEGATE_KEYRING", v, rand.Reader); err == nil {
			t.Errorf("keyring %q accepted", v)
		}
	}
	k, _ := keyring(t)
	b, _ := os.ReadFile(k.path)
	env, err := LoadEnv("VOICEGATE_KEYRING", string(b), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Rotate(); err == nil {
		t.Fatal("a keyring from the environment rotated")
	}
	s, err := Seal(env, rand.Reader, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(k, s, nil); err != nil || string(pt) != "x" {
		t.Fatalf("the file and the environment hold the same keys: %v", err)
	}
}

// TestRotationSeenByAnotherProcess: a running voicegate picks up a key
// rotated by voicegate keys rotate within RefreshInterval, and then seals
// with it.
func TestRotationSeenByAnotherProcess(t *testing.T) {
	_, path := keyring(t)
	clock := time.Now()
	serving, err := LoadFile(path, rand.Reader, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	cli, err := LoadFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	old := serving.Current()
	next, err := cli.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if serving.Current() != old {
		t.Fatal("re-read before RefreshInterval")
	}
	clock = clock.Add(RefreshInterval)
	s, err := Seal(serving, rand.Reader, []byte("x"), nil)
	if err != nil || s.Key.KeyID != next || serving.Current() != next {
		t.Fatalf("the serving keyring still seals with %s (want %s): %v", s.Key.KeyID, next, err)
	}
	if pt, err := Open(cli, s, nil); err != nil || string(pt) != "x" {
		t.Fatalf("%v", err)
	}
}

// TestConcurrentRotationsLoseNoKey: processes rotating at once (each with
// its own copy) never drop one another's keys: writes re-read the file
// under a lock.
func TestConcurrentRotationsLoseNoKey(t *testing.T) {
	_, path := keyring(t)
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		k, err := LoadFile(path, rand.Reader, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			id, err := k.Rotate()
			if err != nil {
				t.Error(err)
			}
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	final, err := OpenFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, id := range final.IDs() {
		have[id] = true
	}
	for id := range ids {
		if !have[id] {
			t.Errorf("key %s rotated in but lost", id)
		}
	}
	if len(have) != 9 {
		t.Errorf("%d keys, want 9", len(have))
	}
}

// TestUnreadableKeyringStopsSealing: when the file changes into something
// this process cannot read, sealing stops (an error) instead of going on
// with a key that may have been retired meanwhile.
func TestUnreadableKeyringStopsSealing(t *testing.T) {
	_, path := keyring(t)
	clock := time.Now()
	k, err := LoadFile(path, rand.Reader, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".new", []byte("{damaged"), 0o600)
	os.Rename(path+".new", path)
	clock = clock.Add(RefreshInterval)
	if _, err := Seal(k, rand.Reader, []byte("x"), nil); err == nil || !strings.Contains(err.Error(), "can no longer be read") {
		t.Fatalf("sealing with an unreadable keyring: %v", err)
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.json"), rand.Reader, time.Now); err == nil || !strings.Contains(err.Error(), "restore it from its backup") {
		t.Fatalf("OpenFile of a missing keyring: %v", err)
	}
}

func TestLookupKeyIsStable(t *testing.T) {
	k, path := keyring(t)
	first := bytes.Clone(k.LookupKey())
	if len(first) != KeySize {
		t.Fatalf("a new keyring's lookup key: %d bytes", len(first))
	}
	// Rotation and retirement keep it; another process reads the same.
	old := k.Current()
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	k.now = func() time.Time { return time.Now().Add(2 * RetireAfter) }
	if err := k.Retire(old); err != nil {
		t.Fatal(err)
	}
	other, err := OpenFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.LookupKey(), first) || !bytes.Equal(other.LookupKey(), first) {
		t.Fatal("the lookup key changed with rotation, retirement or reload")
	}
	// A keyring file written before lookup keys gets one, kept from then on.
	b, _ := os.ReadFile(path)
	stripped := strings.Replace(string(b), `"lookup_key"`, `"unused"`, 1)
	if err := os.WriteFile(path, []byte(stripped), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnv("VOICEGATE_KEYRING", stripped, rand.Reader); err == nil || !strings.Contains(err.Error(), "lookup_key") {
		t.Fatalf("an environment keyring without a lookup key: %v", err)
	}
	added, err := OpenFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenFile(path, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(added.LookupKey()) != KeySize || !bytes.Equal(added.LookupKey(), again.LookupKey()) {
		t.Fatal("an old keyring's added lookup key is not kept")
	}
	b, _ = os.ReadFile(path)
	bad := strings.Replace(string(b), `"lookup_key": "`, `"lookup_key": "AAAA`, 1)
	if _, err := LoadEnv("VOICEGATE_KEYRING", bad, rand.Reader); err == nil || !strings.Contains(err.Error(), "lookup_key") {
		t.Fatalf("a damaged lookup key: %v", err)
	}
}
