package records_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/writertest"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// TestRotateRewrapRetire on the real SQLite store: records sealed under
// the first key stay readable after a rotation, a rewrap moves them all to
// the new key without touching payloads — resuming after an interruption —
// and only then may the old key be retired.
func TestRotateRewrapRetire(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	p := writertest.SQLite(t, dir, func() time.Time { return clock }, "")
	db, kr, secrets, w := p.DB, p.Keys, p.Secrets, p.Writer
	_, _ = kr, secrets
	defer db.Close()
	const n = 1200 // more than two rewrap batches
	for i := range n {
		if err := w.ToolCall(ctx, records.Call{ID: "call-1"}, records.ToolCall{ToolCallID: string(rune('a'+i%26)) + time.Duration(i).String(), Tool: "t", Result: "secret"}); err != nil {
			t.Fatal(err)
		}
	}
	old := kr.Current()
	if _, err := kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	// An interrupted rewrap: cancelled after the first batch.
	cctx, cancel := context.WithCancel(ctx)
	done, err := w.Rewrap(cctx, func(int) { cancel() })
	if !errors.Is(err, context.Canceled) || done != records.RewrapBatch {
		t.Fatalf("interrupted rewrap: %d done, %v", done, err)
	}
	clock = clock.Add(envelope.RetireAfter + time.Second)
	if err := w.CheckRetire(ctx, old); !errors.Is(err, records.ErrKeyInUse) {
		t.Fatalf("retire with records still under the key: %v", err)
	}
	rest, err := w.Rewrap(ctx, nil)
	if err != nil || rest != n-records.RewrapBatch {
		t.Fatalf("resumed rewrap: %d %v, want %d", rest, err, n-records.RewrapBatch)
	}
	if err := w.CheckRetire(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := kr.Retire(old); err != nil {
		t.Fatal(err)
	}
	recs, err := db.CallRecords(ctx, "call-1")
	if err != nil || len(recs) != n {
		t.Fatalf("%d records %v", len(recs), err)
	}
	for _, r := range recs {
		if b, err := w.Open(ctx, r); err != nil || len(b) == 0 || r.Key.KeyID != kr.Current() {
			t.Fatalf("record %s under %s after the rewrap: %v", r.ID, r.Key.KeyID, err)
		}
	}
}

// copyDB copies a SQLite database (with its write-ahead log) to a new
// directory: a backup taken at that moment.
func copyDB(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{"voicegate.db", "voicegate.db-wal"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			if name == "voicegate.db-wal" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestPurgeDefeatsAnEarlierBackup: a purge erases the call's secret, so a
// copy of the database taken before it, opened with the current keyring,
// opens none of the call's records — while another call's still open.
func TestPurgeDefeatsAnEarlierBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	db, kr, secrets, w := p.DB, p.Keys, p.Secrets, p.Writer
	_, _ = kr, secrets
	defer db.Close()
	for _, call := range []string{"gone", "kept"} {
		if err := w.EndOfCall(ctx, records.Call{ID: call}, []byte(`{"transcript":"my number is +15557654321"}`)); err != nil {
			t.Fatal(err)
		}
	}
	backupDir := copyDB(t, dir)
	if n, err := w.Purge(ctx, "gone"); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	backup, err := sqlite.Open(ctx, backupDir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer backup.Close()
	fromBackup := records.NewWriter(records.Deps{Store: backup, Keys: kr, Secrets: secrets, Random: rand.Reader, Now: time.Now})
	for call, wantOpen := range map[string]bool{"gone": false, "kept": true} {
		recs, err := backup.CallRecords(ctx, call)
		if err != nil || len(recs) != 1 || recs[0].Key.KeyID == "" {
			t.Fatalf("%s in the backup: %v %v", call, recs, err)
		}
		b, err := fromBackup.Open(ctx, recs[0])
		if wantOpen && (err != nil || len(b) == 0) {
			t.Fatalf("another call's record no longer opens from the backup: %v", err)
		}
		if !wantOpen && !errors.Is(err, records.ErrShredded) {
			t.Fatalf("the purged call's record opens from a backup taken before the purge: %v %q", err, b)
		}
		if !wantOpen {
			// Someone with the backup and the keyring uses their own code,
			// not Open: without the call's secret the envelope must not open.
			r := recs[0]
			for _, aad := range [][]byte{r.AAD(), append(r.AAD(), make([]byte, 32)...)} {
				if pt, err := envelope.Open(kr, envelope.Sealed{Key: r.Key, Payload: r.Payload}, aad); err == nil {
					t.Fatalf("the purged record opens without its call's secret: %q", pt)
				}
			}
		}
	}
	// A live call purged stays erased: its next event keeps nothing.
	if err := w.ToolCall(ctx, records.Call{ID: "gone"}, records.ToolCall{ToolCallID: "later", Tool: "t", Arguments: []byte(`{"ssn":"123-45-6789"}`)}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := db.CallRecords(ctx, "gone"); len(recs) != 1 {
		t.Fatalf("an erased call got %d records, want its 1 shredded one", len(recs))
	}
}

// TestPurgeByCaller: a caller's records are found by the keyed hash of
// their number, written in any usual way; the number itself is stored
// nowhere; purging the caller erases each of their calls and no other.
func TestPurgeByCaller(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	defer p.DB.Close()
	w := p.Writer
	const number = "+14155550123"
	for call, caller := range map[string]string{"a1": number, "a2": number, "b1": "+14155550999", "c1": ""} {
		if err := w.EndOfCall(ctx, records.Call{ID: call, Caller: caller}, []byte(`{"transcript":"hello"}`)); err != nil {
			t.Fatal(err)
		}
		if err := w.ToolCall(ctx, records.Call{ID: call, Caller: caller}, records.ToolCall{ToolCallID: "t", Tool: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	h := w.CallerHash(number)
	if len(h) != 32 || h != w.CallerHash(" +1 (415) 555-0123 ") || h == w.CallerHash("+14155550999") || w.CallerHash("") != "" {
		t.Fatalf("caller hashes: %q", h)
	}
	other := records.NewWriter(records.Deps{Store: p.DB, Keys: p.Keys, Secrets: p.Secrets, LookupKey: make([]byte, 32)})
	if other.CallerHash(number) == h || other.DedupKey("a", "b") == w.DedupKey("a", "b") || w.DedupKey("a", "b") == w.DedupKey("ab") {
		t.Fatal("the hashes do not depend on the lookup key, or parts run together")
	}
	p.DB.Close()
	if hits := grepDir(t, dir, "4155550123"); len(hits) > 0 {
		t.Fatalf("the caller's number is stored in clear in %v", hits)
	}
	p = writertest.SQLite(t, dir, nil, "")
	defer p.DB.Close()
	w = p.Writer
	calls, n, err := w.PurgeCaller(ctx, "+1 415-555-0123")
	if err != nil || fmt.Sprint(calls) != "[a1 a2]" || n != 4 {
		t.Fatalf("purge by caller: %v %d %v", calls, n, err)
	}
	for call, open := range map[string]bool{"a1": false, "a2": false, "b1": true, "c1": true} {
		recs, _ := p.DB.CallRecords(ctx, call)
		for _, r := range recs {
			if _, err := w.Open(ctx, r); (err == nil) != open {
				t.Fatalf("call %s after the caller's purge: %v", call, err)
			}
		}
	}
	if calls, _, err := w.PurgeCaller(ctx, number); err != nil || len(calls) != 0 {
		t.Fatalf("a second purge finds %v %v", calls, err)
	}
}

// grepDir returns the files under dir that contain s.
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), s) {
			hits = append(hits, path)
		}
		return nil
	})
	return hits
}

// TestRetention: records older than their kind's period are deleted; a
// call left with no record keeps its secret for IdleGrace (it may still be
// going on), then has it forgotten, so its older copies no longer open; a
// call with a record left, or one that wrote again, keeps it.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	p := writertest.SQLite(t, dir, func() time.Time { return clock }, "")
	defer p.DB.Close()
	w := p.Writer
	for _, call := range []string{"old", "mixed", "long"} {
		if err := w.ToolCall(ctx, records.Call{ID: call}, records.ToolCall{ToolCallID: "t1", Tool: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.EndOfCall(ctx, records.Call{ID: "mixed"}, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(8 * 24 * time.Hour)
	if err := w.ToolCall(ctx, records.Call{ID: "young"}, records.ToolCall{ToolCallID: "t1", Tool: "x"}); err != nil {
		t.Fatal(err)
	}
	backup := copyDB(t, dir)
	periods := map[records.Kind]time.Duration{records.KindToolCall: 7 * 24 * time.Hour, records.KindEndOfCall: 30 * 24 * time.Hour}
	res, err := w.Expire(ctx, periods)
	if err != nil || res.Records[records.KindToolCall] != 3 || res.Records[records.KindEndOfCall] != 0 || res.Calls != 0 {
		t.Fatalf("expire: %+v %v", res, err)
	}
	for call, want := range map[string]int{"old": 0, "mixed": 1, "young": 1, "long": 0} {
		if recs, _ := p.DB.CallRecords(ctx, call); len(recs) != want {
			t.Fatalf("call %s keeps %d records, want %d", call, len(recs), want)
		}
	}
	// The long call is still going on: its report comes after its tool
	// call expired, and is kept and readable (not dropped as erased).
	clock = clock.Add(time.Hour)
	if err := w.EndOfCall(ctx, records.Call{ID: "long"}, []byte(`{"transcript":"late"}`)); err != nil {
		t.Fatal(err)
	}
	recs, _ := p.DB.CallRecords(ctx, "long")
	if len(recs) != 1 {
		t.Fatalf("the long call's report: %d records", len(recs))
	}
	if _, err := w.Open(ctx, recs[0]); err != nil {
		t.Fatalf("the long call's report does not open: %v", err)
	}
	// IdleGrace later the idle call without records has its secret
	// forgotten; the long call, with a record again, keeps its own.
	clock = clock.Add(records.IdleGrace)
	res, err = w.Expire(ctx, periods)
	if err != nil || res.Calls != 1 {
		t.Fatalf("expire after the grace: %+v %v", res, err)
	}
	for call, gone := range map[string]bool{"old": true, "mixed": false, "young": false, "long": false} {
		_, err := p.Secrets.Secret(ctx, call, false)
		if gone != errors.Is(err, records.ErrSecretMissing) || errors.Is(err, records.ErrCallErased) {
			t.Fatalf("call %s: secret %v, want forgotten=%v and never erased", call, err, gone)
		}
	}
	// The forgotten call's record no longer opens from the earlier copy.
	b, err := sqlite.Open(ctx, backup, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	old, _ := b.CallRecords(ctx, "old")
	if len(old) != 1 {
		t.Fatalf("the backup has %d records of the old call", len(old))
	}
	if _, err := w.Open(ctx, old[0]); err == nil {
		t.Fatal("an expired call's record opens from an earlier backup")
	}
	// A call forgotten by retention is not erased: it may record again.
	if err := w.ToolCall(ctx, records.Call{ID: "old"}, records.ToolCall{ToolCallID: "t9", Tool: "x"}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := p.DB.CallRecords(ctx, "old"); len(recs) != 1 {
		t.Fatalf("a new record of a forgotten call: %d", len(recs))
	}
	if res, err := w.Expire(ctx, periods); err != nil || res.Records[records.KindToolCall] != 0 || res.Calls != 0 {
		t.Fatalf("a third run: %+v %v", res, err)
	}
}

// TestRewrapRefusesAMissingSecret: a record whose call's secret is missing
// but was never erased (erasure.db restored from an older backup) stops a
// rewrap with an error naming it; it is never shredded on a guess.
func TestRewrapRefusesAMissingSecret(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	p := writertest.SQLite(t, dir, func() time.Time { return clock }, "")
	defer p.DB.Close()
	if err := p.Writer.ToolCall(ctx, records.Call{ID: "c"}, records.ToolCall{ToolCallID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Secrets.Forget(ctx, "c", true); err != nil { // as if erasure.db were older than the call
		t.Fatal(err)
	}
	if _, err := p.Keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Writer.Rewrap(ctx, nil); !errors.Is(err, records.ErrSecretMissing) || !strings.Contains(err.Error(), "call c") {
		t.Fatalf("rewrap over a missing secret: %v", err)
	}
	recs, _ := p.DB.CallRecords(ctx, "c")
	if len(recs) != 1 || recs[0].Key.KeyID == "" {
		t.Fatal("a record with a missing secret was shredded")
	}
	if _, err := p.Writer.Open(ctx, recs[0]); !errors.Is(err, records.ErrSecretMissing) || errors.Is(err, records.ErrShredded) {
		t.Fatalf("open with a missing secret: %v", err)
	}
}

// TestRedactionModes: "copy" keeps the original sealed and a redacted copy
// sealed under the same data key (a purge destroys both); "only" seals the
// redacted text and never stores the original.
func TestRedactionModes(t *testing.T) {
	ctx := context.Background()
	const report = `{"transcript":"User: my number is 415-555-0123 and my card is 4111 1111 1111 1111, I am Zebediah Quartermaine","cost":0.1}`
	for _, mode := range []records.Redaction{records.RedactNone, records.RedactCopy, records.RedactOnly} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			p := writertest.SQLite(t, dir, nil, mode)
			defer p.DB.Close()
			if err := p.Writer.EndOfCall(ctx, records.Call{ID: "c"}, []byte(report)); err != nil {
				t.Fatal(err)
			}
			recs, _ := p.DB.CallRecords(ctx, "c")
			b, err := p.Writer.Open(ctx, recs[0])
			if err != nil {
				t.Fatal(err)
			}
			original := strings.Contains(string(b), "415-555-0123")
			if original != (mode != records.RedactOnly) {
				t.Fatalf("opened content %s", b)
			}
			copied, err := p.Writer.OpenRedacted(ctx, recs[0])
			if (err == nil) != (mode == records.RedactCopy) || (err != nil && !errors.Is(err, records.ErrNoRedactedCopy)) {
				t.Fatalf("redacted copy: %q %v", copied, err)
			}
			if mode == records.RedactCopy && (!strings.Contains(string(copied), "[PHONE]") || !strings.Contains(string(copied), "[CARD]") || strings.Contains(string(copied), "0123")) {
				t.Fatalf("redacted copy %s", copied)
			}
			if mode == records.RedactOnly && (!strings.Contains(string(b), "[PHONE]") || strings.Contains(string(b), "4111")) {
				t.Fatalf("redacted-only content %s", b)
			}
			// The copy is sealed and bound: it does not open as the original.
			if mode == records.RedactCopy {
				swapped := recs[0]
				swapped.Payload = swapped.Redacted
				if _, err := p.Writer.Open(ctx, swapped); err == nil {
					t.Fatal("the redacted copy opened as the original")
				}
			}
			if n, err := p.Writer.Purge(ctx, "c"); err != nil || n != 1 {
				t.Fatalf("purge: %d %v", n, err)
			}
			p.DB.Close()
			// Nothing in clear, before or after the purge: not the number,
			// and not what the redactor cannot find (a name).
			for _, s := range []string{"555-0123", "Zebediah", "[PHONE]"} {
				if hits := grepDir(t, dir, s); len(hits) > 0 {
					t.Fatalf("%q in clear in %v", s, hits)
				}
			}
		})
	}
}

// TestRewrapShredsARecordWrittenDuringItsPurge: a record stored after its
// call's secret was erased (a write racing the purge) can never be opened;
// a rewrap shreds it, so it does not keep an old key from being retired.
func TestRewrapShredsARecordWrittenDuringItsPurge(t *testing.T) {
	ctx := context.Background()
	clock := time.Now()
	p := writertest.SQLite(t, t.TempDir(), func() time.Time { return clock }, "")
	defer p.DB.Close()
	if err := p.Writer.ToolCall(ctx, records.Call{ID: "c"}, records.ToolCall{ToolCallID: "t1"}); err != nil {
		t.Fatal(err)
	}
	old := p.Keys.Current()
	// The race: the purge erases the secret after the write read it.
	if _, err := p.Secrets.Erase(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(envelope.RetireAfter + time.Second)
	if err := p.Writer.CheckRetire(ctx, old); !errors.Is(err, records.ErrKeyInUse) {
		t.Fatalf("before the rewrap: %v", err)
	}
	if _, err := p.Writer.Rewrap(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Writer.CheckRetire(ctx, old); err != nil {
		t.Fatalf("after the rewrap, the unreadable record still holds the old key: %v", err)
	}
}

// TestPreparedSecretWithoutRecordsIsForgotten: a call prepared when it
// started but that never wrote a record does not keep its secret forever:
// a day later (its 12 hours, then retention's grace) it is forgotten, with
// or without retention periods; a prepared call that wrote records keeps it.
func TestPreparedSecretWithoutRecordsIsForgotten(t *testing.T) {
	ctx := context.Background()
	clock := time.Now()
	p := writertest.SQLite(t, t.TempDir(), func() time.Time { return clock }, "")
	defer p.DB.Close()
	p.Writer.Prepare("quiet")
	p.Writer.Prepare("busy")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err1 := p.Secrets.Secret(ctx, "quiet", false)
		_, err2 := p.Secrets.Secret(ctx, "busy", false)
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the prepared secrets never appeared")
		}
	}
	if err := p.Writer.ToolCall(ctx, records.Call{ID: "busy"}, records.ToolCall{ToolCallID: "t1", Tool: "x"}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(13 * time.Hour)
	if res, err := p.Writer.Expire(ctx, nil); err != nil || res.Calls != 0 {
		t.Fatalf("half a day on: %+v %v", res, err)
	}
	clock = clock.Add(12 * time.Hour)
	if res, err := p.Writer.Expire(ctx, nil); err != nil || res.Calls != 1 {
		t.Fatalf("a day on: %+v %v", res, err)
	}
	if _, err := p.Secrets.Secret(ctx, "quiet", false); !errors.Is(err, records.ErrSecretMissing) {
		t.Fatalf("the quiet call's secret: %v", err)
	}
	recs, _ := p.DB.CallRecords(ctx, "busy")
	if _, err := p.Writer.Open(ctx, recs[0]); err != nil {
		t.Fatalf("the busy call's record: %v", err)
	}
}
