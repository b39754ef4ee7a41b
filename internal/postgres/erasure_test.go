package postgres

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/erasure/erasuretest"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
)

var _ erasure.Secrets = (*Erasure)(nil)

// TestErasureContract: PostgreSQL's per-call secrets meet the contract of
// the SQLite store, in the store's database and in one of their own.
func TestErasureContract(t *testing.T) {
	t.Run("StoreDatabase", func(t *testing.T) {
		erasuretest.Run(t, func(t *testing.T) erasure.Secrets {
			db := open(t)
			t.Cleanup(func() { db.Close() })
			return db.Erasure()
		})
	})
	t.Run("OwnDatabase", func(t *testing.T) {
		erasuretest.Run(t, func(t *testing.T) erasure.Secrets {
			e, err := OpenErasure(context.Background(), pgtest.URL(t), Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			return e
		})
	})
}

// TestErasureSharedByReplicas: two processes (two pools) on one schema see
// one set of secrets: what one creates the other reads, what one erases
// is erased for the other, and racing creates give one secret.
func TestErasureSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	var stores [2]*Erasure
	for i := range stores {
		db, err := Open(ctx, u, Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		stores[i] = db.Erasure()
		defer stores[i].Close()
	}
	a, b := stores[0], stores[1]
	sa, err := a.Secret(ctx, "call-1", true)
	if err != nil {
		t.Fatal(err)
	}
	if sb, err := b.Secret(ctx, "call-1", true); err != nil || !bytes.Equal(sa, sb) {
		t.Fatalf("the other replica's secret: %v, or a different one", err)
	}
	if had, err := b.Erase(ctx, "call-1"); err != nil || !had {
		t.Fatalf("erase through the other replica: %v %v", had, err)
	}
	if _, err := a.Secret(ctx, "call-1", true); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("erased by one replica, the other: %v", err)
	}
	// Both replicas create one call's secret at once, many times over.
	for i := range 20 {
		call := "race-" + string(rune('a'+i))
		got := make(chan []byte, 2)
		for _, s := range stores {
			go func() {
				b, err := s.Secret(ctx, call, true)
				if err != nil {
					t.Error(err)
				}
				got <- b
			}()
		}
		if x, y := <-got, <-got; !bytes.Equal(x, y) {
			t.Fatalf("%s: two replicas got two secrets", call)
		}
	}
}

// TestErasureRestore: a replica's erasure.db moved into PostgreSQL keeps
// its secrets, tombstones and idle marks; what is already there wins; an
// empty store says so (records beside it would be unreadable).
func TestErasureRestore(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	defer db.Close()
	e := db.Erasure()
	defer e.Close()
	if empty, err := e.Empty(ctx); err != nil || !empty {
		t.Fatalf("a new store: empty %v %v", empty, err)
	}
	here, err := e.Secret(ctx, "both", true)
	if err != nil {
		t.Fatal(err)
	}
	if empty, err := e.Empty(ctx); err != nil || empty {
		t.Fatalf("a store with a secret: empty %v %v", empty, err)
	}
	old := bytes.Repeat([]byte{7}, 32)
	idle := time.UnixMilli(1_795_000_000_000)
	for _, r := range []struct {
		id     string
		secret []byte
		erased bool
		idle   time.Time
	}{
		{"moved", old, false, idle},
		{"both", old, false, time.Time{}},
		{"erased-there", nil, true, time.Time{}},
		{"moved", old, false, idle}, // twice: nothing changes
	} {
		if err := e.Restore(ctx, r.id, r.secret, r.erased, r.idle); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.Secret(ctx, "moved", false); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("moved: %v", err)
	}
	if got, err := e.Secret(ctx, "both", false); err != nil || !bytes.Equal(got, here) {
		t.Fatalf("a call already here: %v, or the moved secret replaced it", err)
	}
	if _, err := e.Secret(ctx, "erased-there", true); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("a call erased in the moved store: %v", err)
	}
	if ids, err := e.Idle(ctx, idle.Add(time.Millisecond), 10); err != nil || len(ids) != 1 || ids[0] != "moved" {
		t.Fatalf("idle marks: %v %v", ids, err)
	}
}
