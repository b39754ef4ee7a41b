// Package gitopstest is the contract every gitops.Store passes: the
// stores' (SQLite, PostgreSQL).
package gitopstest

import (
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/gitops"
)

// Run checks the store open returns (a fresh one per call): entries kept
// per org, replaced by (org, kind, local id), a nil LastApplied kept nil,
// JSON kept byte for byte, deleted.
func Run(t *testing.T, open func(t *testing.T) gitops.Store) {
	ctx := context.Background()
	at := time.Date(2026, 6, 1, 12, 0, 0, 123e6, time.UTC)
	t.Run("PutListReplaceDelete", func(t *testing.T) {
		s := open(t)
		if es, err := s.VapiResources(ctx, "acme"); err != nil || len(es) != 0 {
			t.Fatalf("empty store: %v %v", es, err)
		}
		applied := []byte(`{"model":{"temperature":0.70,"big":123456789012345678901234567890},"name":"Support ✓"}`)
		puts := []gitops.Entry{
			{Org: "acme", Kind: "assistants", LocalID: "support", VapiID: "a-1", LastApplied: applied, UpdatedAt: at},
			{Org: "acme", Kind: "tools", LocalID: "team/lookup", VapiID: "t-1", UpdatedAt: at},
			{Org: "other", Kind: "assistants", LocalID: "support", VapiID: "a-2", LastApplied: []byte(`{}`), UpdatedAt: at},
		}
		for _, e := range puts {
			if err := s.PutVapiResource(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		es, err := s.VapiResources(ctx, "acme")
		if err != nil || len(es) != 2 {
			t.Fatalf("acme: %+v %v", es, err)
		}
		if e := es[0]; e.Kind != "assistants" || e.LocalID != "support" || e.VapiID != "a-1" || string(e.LastApplied) != string(applied) || !e.UpdatedAt.Equal(at) {
			t.Fatalf("entry %+v", e)
		}
		if e := es[1]; e.LocalID != "team/lookup" || e.LastApplied != nil {
			t.Fatalf("an entry never applied: %+v (LastApplied %q)", e, e.LastApplied)
		}
		// Replaced by (org, kind, local id).
		if err := s.PutVapiResource(ctx, gitops.Entry{Org: "acme", Kind: "tools", LocalID: "team/lookup", VapiID: "t-2", LastApplied: []byte(`{"a":1}`), UpdatedAt: at.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		es, _ = s.VapiResources(ctx, "acme")
		if len(es) != 2 || es[1].VapiID != "t-2" || string(es[1].LastApplied) != `{"a":1}` {
			t.Fatalf("replaced: %+v", es)
		}
		if err := s.DeleteVapiResource(ctx, "acme", "assistants", "support"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteVapiResource(ctx, "acme", "assistants", "support"); err != nil {
			t.Fatalf("deleting nothing: %v", err)
		}
		es, _ = s.VapiResources(ctx, "acme")
		other, _ := s.VapiResources(ctx, "other")
		if len(es) != 1 || len(other) != 1 || other[0].VapiID != "a-2" {
			t.Fatalf("after delete: %+v, other org %+v", es, other)
		}
	})
}
