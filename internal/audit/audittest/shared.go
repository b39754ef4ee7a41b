package audittest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
)

// SharedEnv is a fresh, empty shared chain: Open returns a store of its
// own on it (another replica's view: its own connections), Exec tampers
// with the tables directly, as an attacker with access to the database
// would (SQL with ? placeholders).
type SharedEnv struct {
	Open func(t *testing.T) audit.SharedStore
	Exec func(query string, args ...any) error
}

// RunShared runs the suite of a chain that several replicas append to.
func RunShared(t *testing.T, open func(t *testing.T) SharedEnv) {
	ctx := context.Background()
	key := audit.SharedKey([]byte("the records keyring's lookup key"))
	attacker := []byte("0123456789abcdef0123456789abcdef")
	clock := func() func() time.Time {
		var mu sync.Mutex
		at := time.UnixMilli(1_795_000_000_000)
		return func() time.Time { mu.Lock(); defer mu.Unlock(); at = at.Add(time.Second); return at }
	}
	replica := func(t *testing.T, env SharedEnv, name string) *audit.Log {
		t.Helper()
		l, err := audit.NewShared(ctx, env.Open(t), key, t.TempDir(), name, clock())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	fill := func(t *testing.T, n int) (SharedEnv, *audit.Log) {
		t.Helper()
		env := open(t)
		l := replica(t, env, "serve")
		for i := 1; i <= n; i++ {
			if err := l.Append(ctx, "keys.rotate", fmt.Sprint("k", i), "rotated"); err != nil {
				t.Fatal(err)
			}
		}
		return env, l
	}

	// Two replicas, each with an empty data_dir of its own, append at
	// once: one chain, every entry in it once, and it verifies.
	t.Run("ReplicasAppendConcurrently", func(t *testing.T) {
		env := open(t)
		logs := []*audit.Log{replica(t, env, "replica-a"), replica(t, env, "replica-b")}
		const each = 20
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(logs)*each)
		for i, l := range logs {
			for g := range 2 {
				wg.Go(func() {
					for j := range each {
						if err := l.Append(ctx, "records.read", fmt.Sprintf("r%d-%d-%d", i, g, j), "x"); err != nil {
							errs <- err
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := int64(2 * len(logs) * each)
		r, err := audit.VerifyShared(ctx, env.Open(t), key, "")
		if err != nil || r.Entries != want || r.Before != 0 || !r.BeforeChecked {
			t.Fatalf("verify: %+v %v, want %d entries", r, err, want)
		}
		all, err := env.Open(t).AuditRange(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		actors := map[string]int{}
		for _, e := range all {
			seen[e.Subject] = true
			actors[e.Actor]++
		}
		if len(seen) != int(want) || actors["replica-a"] != int(want)/2 || actors["replica-b"] != int(want)/2 {
			t.Fatalf("%d distinct entries, by %v; want %d, half each", len(seen), actors, want)
		}
	})

	t.Run("VerifyWhileAppending", func(t *testing.T) {
		env, l := fill(t, 3)
		st := env.Open(t)
		verifyWhileAppending(t, l, 20, func() error {
			_, err := audit.VerifyShared(ctx, st, key, "")
			return err
		})
	})

	for _, tc := range []struct {
		name   string
		tamper []string
		seq    int64
		why    string
		// appendRefused: the tampering touches the chain's end, which
		// every append checks (the rest is verify's to find).
		appendRefused bool
	}{
		{"EditedEntry", []string{`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 3`}, 3, "edited", false},
		{"EditedLastEntry", []string{`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 5`}, 5, "edited", true},
		{"RemovedEntry", []string{`DELETE FROM audit_log WHERE seq = 3`}, 3, "removed", false},
		{"RemovedTail", []string{`DELETE FROM audit_log WHERE seq >= 4`}, 4, "were removed", true},
		{"RemovedTailAndHeadMovedBack", []string{`DELETE FROM audit_log WHERE seq >= 4`,
			`UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3)`}, 3, "head row does not verify", true},
		{"SwappedPair", []string{`UPDATE audit_log SET seq = 100 WHERE seq = 2`, `UPDATE audit_log SET seq = 2 WHERE seq = 3`,
			`UPDATE audit_log SET seq = 3 WHERE seq = 100`}, 2, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, l := fill(t, 5)
			for _, q := range tc.tamper {
				if err := env.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			_, err := audit.VerifyShared(ctx, env.Open(t), key, "")
			var p *audit.Problem
			if !errors.As(err, &p) || p.Seq != tc.seq || !strings.Contains(p.Reason, tc.why) {
				t.Fatalf("verify: %v, want a problem at entry %d (%s)", err, tc.seq, tc.why)
			}
			// Tampering at the end is never covered by a new head.
			if err := l.Append(ctx, "config.reload", "", "applied"); tc.appendRefused != errors.Is(err, audit.ErrTampered) {
				t.Fatalf("append after tampering: %v, want ErrTampered: %v", err, tc.appendRefused)
			}
		})
	}

	t.Run("ForgedTail", func(t *testing.T) {
		env, l := fill(t, 3)
		st := env.Open(t)
		last, _, _ := st.LastAudit(ctx)
		forged := audit.Entry{Seq: 4, At: last.At, Event: "keys.retire", Subject: "k1", Detail: "retired", Actor: "cli:alice", Prev: last.Hash}
		forged.Hash = forged.Sum(attacker)
		if err := st.InsertAudit(ctx, forged); err != nil {
			t.Fatal(err)
		}
		var p *audit.Problem
		if _, err := audit.VerifyShared(ctx, st, key, ""); !errors.As(err, &p) || p.Seq != 4 {
			t.Fatalf("verify after a forged tail: %v, want a problem at entry 4", err)
		}
		if err := l.Append(ctx, "config.reload", "", "applied"); !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("append after a forged tail: %v, want ErrTampered", err)
		}
	})

	t.Run("HeadRowRemoved", func(t *testing.T) {
		env, l := fill(t, 3)
		if err := env.Exec(`DELETE FROM audit_head`); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.VerifyShared(ctx, env.Open(t), key, t.TempDir()); err == nil {
			t.Fatal("a chain whose head row was removed verifies")
		}
		if err := l.Append(ctx, "config.reload", "", "applied"); !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("append without a head row: %v, want ErrTampered", err)
		}
		if _, err := audit.NewShared(ctx, env.Open(t), key, t.TempDir(), "serve", clock()); err == nil {
			t.Fatal("a replica started on a chain whose head row was removed")
		}
	})

	// A replica whose keyring differs is refused at once, before it
	// writes anything: its entries would not verify as one chain.
	t.Run("AnotherKeyIsRefused", func(t *testing.T) {
		env, _ := fill(t, 2)
		other := audit.SharedKey([]byte("another keyring's lookup key...."))
		if _, err := audit.NewShared(ctx, env.Open(t), other, t.TempDir(), "serve", clock()); !errors.Is(err, audit.ErrKeyMismatch) ||
			!strings.Contains(err.Error(), "keyring") {
			t.Fatalf("a replica with another key: %v, want ErrKeyMismatch naming the keyring", err)
		}
		var p *audit.Problem
		if _, err := audit.VerifyShared(ctx, env.Open(t), other, ""); !errors.As(err, &p) {
			t.Fatalf("verify under another key: %v, want a problem", err)
		}
	})

	// A chain written by one replica before it was shared (audit.key and
	// head file in its data_dir) is taken over once it verifies there.
	t.Run("TakeOverAReplicasChain", func(t *testing.T) {
		env := open(t)
		dir := t.TempDir()
		old, err := audit.New(env.Open(t), dir, "serve", clock())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := old.Append(ctx, "keys.rotate", fmt.Sprint("k", i), "rotated"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := audit.NewShared(ctx, env.Open(t), key, t.TempDir(), "serve", clock()); err == nil || !strings.Contains(err.Error(), "audit.key") {
			t.Fatalf("take-over without the writer's data_dir: %v, want a refusal naming audit.key", err)
		}
		l, err := audit.NewShared(ctx, env.Open(t), key, dir, "serve", clock())
		if err != nil {
			t.Fatal(err)
		}
		// Then any replica joins, with an empty data_dir.
		l2 := replica(t, env, "replica-b")
		for _, x := range []*audit.Log{l, l2} {
			if err := x.Append(ctx, "config.reload", "", "applied"); err != nil {
				t.Fatal(err)
			}
		}
		r, err := audit.VerifyShared(ctx, env.Open(t), key, dir)
		if err != nil || r.Entries != 5 || r.Before != 3 || !r.BeforeChecked {
			t.Fatalf("verify with the old key: %+v %v", r, err)
		}
		r, err = audit.VerifyShared(ctx, env.Open(t), key, t.TempDir())
		if err != nil || r.Entries != 5 || r.Before != 3 || r.BeforeChecked {
			t.Fatalf("verify without the old key: %+v %v", r, err)
		}
		if err := env.Exec(`UPDATE audit_log SET detail = 'edited' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		var p *audit.Problem
		if _, err := audit.VerifyShared(ctx, env.Open(t), key, dir); !errors.As(err, &p) || p.Seq != 2 {
			t.Fatalf("an edited entry from before the take-over: %v, want a problem at 2", err)
		}
	})
}
