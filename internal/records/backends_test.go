package records_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/writertest"
)

// TestWriterOnBothBackends runs the writer's promises on SQLite and on
// PostgreSQL: rotation keeps records readable, an interrupted rewrap
// resumes, retire waits for it; a purge defeats a copy of the records
// taken before it (read here before the purge: what a backup holds);
// purge by caller; retention; redaction modes.
func TestWriterOnBothBackends(t *testing.T) {
	ctx := context.Background()
	for _, b := range writertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("RotateRewrapRetire", func(t *testing.T) {
				clock := time.Now()
				st, kr, _, w := b.Open(t, t.TempDir(), func() time.Time { return clock }, "")
				n := records.RewrapBatch + 20
				for i := range n {
					if err := w.ToolCall(ctx, records.Call{ID: "c1"}, records.ToolCall{ToolCallID: fmt.Sprint("t", i), Tool: "x", Result: "secret"}); err != nil {
						t.Fatal(err)
					}
				}
				old := kr.Current()
				if _, err := kr.Rotate(); err != nil {
					t.Fatal(err)
				}
				cctx, cancel := context.WithCancel(ctx)
				if done, err := w.Rewrap(cctx, func(int) { cancel() }); !errors.Is(err, context.Canceled) || done != records.RewrapBatch {
					t.Fatalf("interrupted rewrap: %d %v", done, err)
				}
				clock = clock.Add(envelope.RetireAfter + time.Second)
				if err := w.CheckRetire(ctx, old); !errors.Is(err, records.ErrKeyInUse) {
					t.Fatalf("retire mid-rewrap: %v", err)
				}
				if rest, err := w.Rewrap(ctx, nil); err != nil || rest != 20 {
					t.Fatalf("resumed rewrap: %d %v", rest, err)
				}
				if err := w.CheckRetire(ctx, old); err != nil {
					t.Fatal(err)
				}
				if err := kr.Retire(old); err != nil {
					t.Fatal(err)
				}
				recs, _ := st.CallRecords(ctx, "c1")
				for _, r := range recs {
					if pt, err := w.Open(ctx, r); err != nil || !strings.Contains(string(pt), "secret") {
						t.Fatalf("record %s after rewrap and retire: %v", r.ID, err)
					}
				}
			})
			t.Run("PurgeDefeatsAnEarlierCopy", func(t *testing.T) {
				st, _, _, w := b.Open(t, t.TempDir(), nil, records.RedactCopy)
				for _, c := range []string{"gone", "kept"} {
					if err := w.EndOfCall(ctx, records.Call{ID: c, Caller: "+14155550123"}, []byte(`{"transcript":"my ssn is 123-45-6789"}`)); err != nil {
						t.Fatal(err)
					}
				}
				before, _ := st.CallRecords(ctx, "gone")
				kept, _ := st.CallRecords(ctx, "kept")
				if n, err := w.Purge(ctx, "gone"); err != nil || n != 1 {
					t.Fatalf("purge: %d %v", n, err)
				}
				if _, err := w.Open(ctx, before[0]); !errors.Is(err, records.ErrShredded) {
					t.Fatalf("the purged record opens from a copy taken before: %v", err)
				}
				if _, err := w.OpenRedacted(ctx, before[0]); err == nil {
					t.Fatal("the purged record's redacted copy opens from a copy taken before")
				}
				if _, err := w.Open(ctx, kept[0]); err != nil {
					t.Fatalf("another call's record: %v", err)
				}
				after, _ := st.CallRecords(ctx, "gone")
				if after[0].Key.KeyID != "" || after[0].Redacted != nil || after[0].CallerHash != "" {
					t.Fatalf("after the purge the row keeps %+v", after[0])
				}
			})
			t.Run("PurgeByCaller", func(t *testing.T) {
				_, _, _, w := b.Open(t, t.TempDir(), nil, "")
				for call, caller := range map[string]string{"a1": "+14155550123", "a2": "+1 415 555 0123", "b1": "+14155550999"} {
					if err := w.ToolCall(ctx, records.Call{ID: call, Caller: caller}, records.ToolCall{ToolCallID: "t", Tool: "x"}); err != nil {
						t.Fatal(err)
					}
				}
				calls, n, err := w.PurgeCaller(ctx, "+1 (415) 555-0123")
				if err != nil || fmt.Sprint(calls) != "[a1 a2]" || n != 2 {
					t.Fatalf("purge by caller: %v %d %v", calls, n, err)
				}
			})
			t.Run("Retention", func(t *testing.T) {
				clock := time.Now()
				st, _, secrets, w := b.Open(t, t.TempDir(), func() time.Time { return clock }, "")
				if err := w.ToolCall(ctx, records.Call{ID: "old"}, records.ToolCall{ToolCallID: "t", Tool: "x"}); err != nil {
					t.Fatal(err)
				}
				clock = clock.Add(2 * time.Hour)
				periods := map[records.Kind]time.Duration{records.KindToolCall: time.Hour}
				if res, err := w.Expire(ctx, periods); err != nil || res.Records[records.KindToolCall] != 1 {
					t.Fatalf("expire: %+v %v", res, err)
				}
				if recs, _ := st.CallRecords(ctx, "old"); len(recs) != 0 {
					t.Fatal("an expired record is left")
				}
				clock = clock.Add(records.IdleGrace + time.Minute)
				if res, err := w.Expire(ctx, periods); err != nil || res.Calls != 1 {
					t.Fatalf("expire after the grace: %+v %v", res, err)
				}
				if _, err := secrets.Secret(ctx, "old", false); !errors.Is(err, records.ErrSecretMissing) {
					t.Fatalf("the idle call's secret: %v", err)
				}
			})
		})
	}
}
