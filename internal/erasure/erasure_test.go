package erasure

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/voicegate/voicegate/internal/records"
)

// TestErasedSecretLeavesNoBytes: after Erase (and after Forget), the
// secret's bytes are in no file of the directory — database, write-ahead
// log or shared memory — while the store is still open (as serve keeps
// it), and the call stays erased (Forget: may start again).
func TestErasedSecretLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var secrets [][]byte
	for _, call := range []string{"gone", "forgotten", "kept"} {
		b, err := s.Secret(ctx, call, true)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, b)
	}
	if _, err := s.Erase(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forget(ctx, "forgotten", true); err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for i, sec := range secrets {
			if bytes.Contains(b, sec) {
				found[i] = true
			}
		}
		return nil
	})
	if found[0] || found[1] {
		t.Fatalf("an erased or forgotten secret is still on disk: %v", found)
	}
	if !found[2] {
		t.Fatal("the kept secret is on disk nowhere: the scan checks nothing")
	}
	if _, err := s.Secret(ctx, "gone", true); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("an erased call: %v", err)
	}
	if _, err := s.Secret(ctx, "forgotten", false); !errors.Is(err, records.ErrSecretMissing) {
		t.Fatalf("a forgotten call: %v", err)
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode: %v %v", name, fi, err)
		}
	}
}
