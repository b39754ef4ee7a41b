package app

import (
	"context"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
)

// TestReplicaWithItsOwnKeyringIsRefused: two replicas on one PostgreSQL
// database, each with a data_dir of its own. The first writes a record;
// the second, whose keyring was created in its own data_dir, must refuse
// to start (it could neither open the first one's records nor write
// records the first could open), naming the fix.
func TestReplicaWithItsOwnKeyringIsRefused(t *testing.T) {
	url := pgtest.URL(t)
	pg := "storage:\n  driver: postgres\n  postgres_url: " + url + "\n"
	a, err := New(context.Background(), load(t, t.TempDir(), pg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Records.ToolCall(context.Background(), records.Call{ID: "rep-1"}, records.ToolCall{ToolCallID: "t1", Tool: "x", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), load(t, t.TempDir(), pg), Options{})
	if err == nil {
		b.Close()
		t.Fatal("a replica with a keyring of its own started on the shared database")
	}
	if !strings.Contains(err.Error(), "every replica needs the same keyring") || !strings.Contains(err.Error(), a.keys.Current()) {
		t.Fatalf("refusal does not say what and why: %v", err)
	}
}
