package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/knowledge/library"
)

// TestKnowledgeIndexWrittenAtOnce: a document's passages go into the
// FTS5 index in one statement. Written by a trigger in each passage's
// statement, FTS5 flushed a segment per passage (its savepoint) and
// merged them: an 8 MiB document held the write lock for seconds —
// longer than the busy timeout serve's writes wait (their calls answered
// 503) — and a replacement twice as long.
func TestKnowledgeIndexWrittenAtOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l := library.New(library.Deps{Store: db, Keys: kr, LookupKey: kr.LookupKey()})
	var doc strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&doc, "# Part %d\n\nParagraph %d on opening hours, parking and refunds, number%d.\n\n", i, i, i)
	}
	segments := func() int {
		var n int
		if err := db.w.QueryRow(`SELECT count(DISTINCT segid) FROM kb_index_idx`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, step := range []string{"add", "replace"} {
		if _, err := l.Add(ctx, "h", "en", "big.md", []byte(doc.String()), library.Markdown); err != nil {
			t.Fatal(err)
		}
		if n := segments(); n > 4 {
			t.Fatalf("%s: %d index segments for one document", step, n)
		}
	}
	if ok, err := l.Remove(ctx, "h", "big.md"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	var rows int
	db.w.QueryRow(`SELECT count(*) FROM kb_passages`).Scan(&rows)
	if m, err := db.MatchPassages(ctx, "h", library.TermsOf(kr.LookupKey(), []string{"park"}), 10); err != nil || rows != 0 || len(m.Candidates) != 0 {
		t.Fatalf("after remove: %d passages, %+v %v", rows, m, err)
	}
}
