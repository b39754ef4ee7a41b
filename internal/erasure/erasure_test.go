package erasure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// TestConcurrentCreatesShareCommits: calls starting at once get their
// secrets (inserted by batches, one commit for many); each call one secret,
// the same however often it is asked for; a call erased stays erased.
func TestConcurrentCreatesShareCommits(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Erase(ctx, "c-erased"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]byte, 64)
	errs := make([]error, 64)
	for i := range 64 {
		wg.Go(func() {
			call := fmt.Sprint("c", i%32) // each call asked for twice at once
			if i == 63 {
				call = "c-erased"
			}
			got[i], errs[i] = s.Secret(ctx, call, true)
		})
	}
	wg.Wait()
	for i := range 63 {
		if errs[i] != nil || len(got[i]) != 32 {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if j := (i + 32) % 64; j < 63 && !bytes.Equal(got[i], got[j]) {
			t.Fatalf("call c%d got two secrets", i%32)
		}
	}
	if !errors.Is(errs[63], records.ErrCallErased) {
		t.Fatalf("an erased call got a secret: %v", errs[63])
	}
	s.Close()
	if _, err := s.Secret(ctx, "new", true); err == nil {
		t.Fatal("a closed store created a secret")
	}
}

// TestPrepare: a secret prepared when a call starts is there for its first
// record (made in the background); an erased call's is never re-made.
func TestPrepare(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Erase(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	s.Prepare("live", time.Now())
	s.Prepare("gone", time.Now())
	deadline := time.Now().Add(5 * time.Second)
	var prepared []byte
	for {
		if prepared, err = s.Secret(ctx, "live", false); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the prepared secret never appeared: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if again, err := s.Secret(ctx, "live", true); err != nil || !bytes.Equal(again, prepared) {
		t.Fatalf("the first record got another secret: %v", err)
	}
	s.Prepare("live", time.Now()) // again: the stored one stays
	time.Sleep(50 * time.Millisecond)
	if again, _ := s.Secret(ctx, "live", false); !bytes.Equal(again, prepared) {
		t.Fatal("a second Prepare replaced the secret")
	}
	if _, err := s.Secret(ctx, "gone", false); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("an erased call after Prepare: %v", err)
	}
}
