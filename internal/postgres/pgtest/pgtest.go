// Package pgtest gives tests a PostgreSQL database of their own: the
// server these machines run (127.0.0.1:5432, trust auth, database test),
// or VOICEGATE_TEST_POSTGRES_URL, with a fresh schema per test, dropped
// when it ends, so that tests run in parallel. Under CI=true an unreachable
// server fails the test; elsewhere it skips, saying why.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BaseURL is the server tests use.
func BaseURL() string {
	if u := os.Getenv("VOICEGATE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Need checks that the server answers, or skips (fails under CI=true).
func Need(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, BaseURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable under CI=true: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v (under CI=true this fails)", err)
	}
	conn.Close(ctx)
}

// Schema returns a fresh schema name, dropped when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	Need(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "vg_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, BaseURL()); err == nil {
			conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
			conn.Close(ctx)
		}
	})
	return name
}

// URL returns BaseURL with search_path set to a fresh schema (created by
// the store at open, dropped when the test ends).
func URL(t testing.TB) string {
	t.Helper()
	s := Schema(t)
	u, err := url.Parse(BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", s)
	u.RawQuery = q.Encode()
	return u.String()
}
