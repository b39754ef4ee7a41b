package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/envelope"
)

const auditUsage = `voicegate audit verify (--config FILE | --data-dir DIR)
voicegate audit list   (--config FILE | --data-dir DIR) [--after SEQ] [--limit N]`

// runAudit verifies or lists the tamper-evident audit log.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "audit needs verify or list\n" + auditUsage}
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, auditUsage)
		return nil
	case "verify", "list":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown audit command %q\n%s", sub, auditUsage)}
	}
	fs := newFlagSet("audit "+sub, stderr)
	cfgPath := fs.String("config", "", "voicegate config (only data_dir, storage and records are read)")
	dataDir := fs.String("data-dir", "", "the data directory (instead of, or overriding, --config)")
	after := fs.Int64("after", 0, "list: entries after this sequence number")
	limit := fs.Int("limit", 100, "list: the most entries to print (1 to 10000)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *limit < 1 || *limit > 10000 {
		return &UsageError{Msg: fmt.Sprintf("--limit must be between 1 and 10000, got %d", *limit)}
	}
	o, err := openData(ctx, *cfgPath, *dataDir, "audit "+sub, getenv, config.LoadStorage, false)
	if err != nil {
		return err
	}
	defer o.close()
	if sub == "verify" {
		if ss, ok := o.store.(audit.SharedStore); ok {
			return verifyShared(ctx, ss, o, stdout)
		}
		n, err := audit.Verify(ctx, o.store, o.cfg.DataDir)
		if err != nil {
			return fmt.Errorf("audit log NOT intact after %d good entries: %w", n, err)
		}
		fmt.Fprintf(stdout, "audit log intact: %d entries; their MACs, the chain and the head file in %s agree\n", n, o.cfg.DataDir)
		return nil
	}
	entries, err := o.store.AuditRange(ctx, *after, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tSUBJECT\tDETAIL\tACTOR")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, formatTime(e.At), text(e.Event), text(e.Subject), text(e.Detail), text(e.Actor))
	}
	return tw.Flush()
}

// verifyShared verifies the chain the replicas share (storage.driver
// postgres), under the key derived from the records keyring; entries from
// before it was shared under data_dir's audit.key when it is there.
func verifyShared(ctx context.Context, ss audit.SharedStore, o *opened, stdout io.Writer) error {
	r, err := audit.VerifyShared(ctx, ss, audit.SharedKey(o.keys.LookupKey()), o.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("audit log NOT intact after %d good entries: %w", r.Entries, err)
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries; their MACs (key from the records keyring), the chain and its head in the database agree\n", r.Entries)
	if r.Before > 0 {
		how := "their MACs checked under " + filepath.Join(o.cfg.DataDir, "audit.key")
		if !r.BeforeChecked {
			how = "only their links checked: give --data-dir the data_dir (with audit.key) of the replica that wrote them to check their MACs"
		}
		fmt.Fprintf(stdout, "entries 1 to %d were written before the replicas shared the log: %s\n", r.Before, how)
	}
	return nil
}

// openAuditLog opens the audit log as serve does, for a command that
// appends to it: with a store the replicas share, under the records
// keyring (which must exist).
func openAuditLog(ctx context.Context, cfg *config.Config, as audit.Store) (*audit.Log, error) {
	var kr *envelope.Local
	if _, ok := as.(audit.SharedStore); ok {
		var err error
		if kr, err = openKeyring(cfg); err != nil {
			return nil, err
		}
	}
	return app.OpenAudit(ctx, as, cfg.DataDir, kr, cliActor(), time.Now)
}
