// Package audittest is the contract every audit.Store must meet, with the
// tampering verify must catch, as one suite: SQLite and PostgreSQL run it.
package audittest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
)

// Env is a fresh store and a way to tamper with its table directly, as an
// attacker with access to the database would. Exec runs SQL with ?
// placeholders.
type Env struct {
	Store audit.Store
	Exec  func(query string, args ...any) error
}

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()
	var lastLog *audit.Log
	fill := func(t *testing.T, n int) (Env, string) {
		t.Helper()
		env := open(t)
		dir := t.TempDir()
		clock := time.UnixMilli(1_795_000_000_000)
		log, err := audit.New(env.Store, dir, "test", func() time.Time { clock = clock.Add(time.Second); return clock })
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			if err := log.Append(ctx, "keys.rotate", fmt.Sprint("k", i), "rotated"); err != nil {
				t.Fatal(err)
			}
		}
		lastLog = log
		return env, dir
	}
	// attacker is a key that is not the log's: what someone who can write
	// the database, but not read data_dir, signs with.
	attacker := []byte("0123456789abcdef0123456789abcdef")
	verifyFails := func(t *testing.T, env Env, head string, seq int64, why string) {
		t.Helper()
		_, err := audit.Verify(ctx, env.Store, head)
		var p *audit.Problem
		if !errors.As(err, &p) || p.Seq != seq || !strings.Contains(p.Reason, why) {
			t.Fatalf("verify: %v, want a problem at entry %d (%s)", err, seq, why)
		}
	}

	t.Run("AppendsChainAndVerify", func(t *testing.T) {
		env, head := fill(t, 5)
		n, err := audit.Verify(ctx, env.Store, head)
		if err != nil || n != 5 {
			t.Fatalf("verify of an intact log: %d %v", n, err)
		}
		last, ok, err := env.Store.LastAudit(ctx)
		if err != nil || !ok || last.Seq != 5 || last.Subject != "k5" || last.Actor != "test" {
			t.Fatalf("last: %+v %v %v", last, ok, err)
		}
		if err := env.Store.InsertAudit(ctx, last); !errors.Is(err, audit.ErrConflict) {
			t.Fatalf("a taken sequence number: %v, want ErrConflict", err)
		}
	})
	// The CLI verifies while serve appends: an intact chain must verify,
	// whatever the moment (before, the head file read after the chain
	// could name entries the walk had not seen).
	t.Run("VerifyWhileAppending", func(t *testing.T) {
		env, head := fill(t, 3)
		log := lastLog
		verifyWhileAppending(t, log, 30, func() error {
			_, err := audit.Verify(ctx, env.Store, head)
			return err
		})
	})

	t.Run("EditedEntry", func(t *testing.T) {
		env, head := fill(t, 5)
		if err := env.Exec(`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		verifyFails(t, env, head, 3, "edited")
	})
	t.Run("RemovedEntry", func(t *testing.T) {
		env, head := fill(t, 5)
		if err := env.Exec(`DELETE FROM audit_log WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		verifyFails(t, env, head, 3, "removed")
	})
	t.Run("RemovedTail", func(t *testing.T) {
		env, head := fill(t, 5)
		if err := env.Exec(`DELETE FROM audit_log WHERE seq >= 4`); err != nil {
			t.Fatal(err)
		}
		verifyFails(t, env, head, 4, "were removed")
	})
	t.Run("InsertedEntry", func(t *testing.T) {
		env, head := fill(t, 5)
		all, _ := env.Store.AuditRange(ctx, 0, 10)
		// Make room at 3, then forge an entry there that follows entry 2.
		for _, q := range []string{`UPDATE audit_log SET seq = -seq WHERE seq >= 3`, `UPDATE audit_log SET seq = 1 - seq WHERE seq < 0`} {
			if err := env.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		forged := audit.Entry{Seq: 3, At: all[1].At, Event: "keys.rotate", Subject: "forged", Detail: "x", Actor: "test", Prev: all[1].Hash}
		forged.Hash = forged.Sum(attacker)
		if err := env.Store.InsertAudit(ctx, forged); err != nil {
			t.Fatal(err)
		}
		verifyFails(t, env, head, 3, "edited")
	})
	t.Run("SwappedPair", func(t *testing.T) {
		env, head := fill(t, 5)
		for _, q := range []string{`UPDATE audit_log SET seq = 100 WHERE seq = 2`, `UPDATE audit_log SET seq = 2 WHERE seq = 3`, `UPDATE audit_log SET seq = 3 WHERE seq = 100`} {
			if err := env.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		verifyFails(t, env, head, 2, "")
	})
	t.Run("RewrittenChain", func(t *testing.T) {
		env, head := fill(t, 5)
		// A consistent rewrite: every entry re-hashed after editing one.
		all, _ := env.Store.AuditRange(ctx, 0, 10)
		if err := env.Exec(`DELETE FROM audit_log`); err != nil {
			t.Fatal(err)
		}
		prev := make([]byte, 32)
		for _, e := range all {
			if e.Seq == 2 {
				e.Detail = "rewritten"
			}
			e.Prev = prev
			e.Hash = e.Sum(attacker)
			prev = e.Hash
			if err := env.Store.InsertAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		verifyFails(t, env, head, 1, "edited")
	})
	t.Run("AppendRefusesATamperedChain", func(t *testing.T) {
		// A forged tail, or a rewrite, is never covered by the next
		// append's new head: the append is refused.
		env, _ := fill(t, 3)
		last, _, _ := env.Store.LastAudit(ctx)
		forged := audit.Entry{Seq: 4, At: last.At, Event: "keys.retire", Subject: "k1", Detail: "retired", Actor: "cli:alice", Prev: last.Hash}
		forged.Hash = forged.Sum(attacker)
		if err := env.Store.InsertAudit(ctx, forged); err != nil {
			t.Fatal(err)
		}
		if err := lastLog.Append(ctx, "config.reload", "", "applied"); !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("append after a forged tail: %v, want ErrTampered", err)
		}
		env2, _ := fill(t, 3)
		if err := env2.Exec(`UPDATE audit_log SET detail = 'edited' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		if err := lastLog.Append(ctx, "config.reload", "", "applied"); !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("append after the head entry was edited: %v, want ErrTampered", err)
		}
	})
}

// verifyWhileAppending runs verify n times while another goroutine keeps
// appending to l; each must pass, and so must every append.
func verifyWhileAppending(t *testing.T, l *audit.Log, n int, verify func() error) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := l.Append(context.Background(), "records.read", fmt.Sprint("r", i), "x"); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range n {
		if err := verify(); err != nil {
			close(stop)
			<-done
			t.Fatalf("verify %d of an intact chain while appending: %v", i, err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
