package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/storage"
)

const keysUsage = `voicegate keys list    (--config FILE | --data-dir DIR)
voicegate keys rotate  (--config FILE | --data-dir DIR)
voicegate keys rewrap  (--config FILE | --data-dir DIR)
voicegate keys retire ID (--config FILE | --data-dir DIR)`

// runKeys manages the keyring that seals the protected records. Each
// subcommand works while serve runs: a running voicegate picks up a
// rotation within envelope.RefreshInterval.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "keys needs list, rotate, rewrap or retire\n" + keysUsage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, keysUsage)
		return nil
	case "list", "rotate", "rewrap", "retire":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown keys command %q\n%s", sub, keysUsage)}
	}
	fs := newFlagSet("keys "+sub, stderr)
	cfgPath := fs.String("config", "", "voicegate config (only data_dir, storage and records are read)")
	dataDir := fs.String("data-dir", "", "the data directory (instead of, or overriding, --config)")
	var id string
	if sub == "retire" {
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			return &UsageError{Msg: "keys retire needs the key's ID (see voicegate keys list)"}
		}
		id, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	o, err := openRecords(ctx, *cfgPath, *dataDir, "keys "+sub, getenv)
	if err != nil {
		return err
	}
	defer o.close()
	w, kr := o.writer, o.keys
	switch sub {
	case "list":
		usage, err := w.Store().KeyUsage(ctx)
		if err != nil {
			return err
		}
		for _, k := range kr.IDs() {
			mark := " "
			if k == kr.Current() {
				mark = "*"
			}
			fmt.Fprintf(stdout, "%s %s  %d record(s)\n", mark, text(k), usage[k])
			delete(usage, k)
		}
		for k, n := range usage {
			fmt.Fprintf(stdout, "! %s  %d record(s) under a key this keyring does not hold: they cannot be read\n", text(k), n)
		}
		fmt.Fprintln(stdout, "(* the current key: new records are sealed with it)")
	case "rotate":
		next, err := kr.Rotate()
		if err != nil {
			return err
		}
		if err := o.audit(ctx, "keys.rotate", next, "new current key"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new current key %s: new records are sealed with it (a running voicegate picks it up within %s).\n"+
			"Existing records stay under their key until: voicegate keys rewrap\n", next, envelope.RefreshInterval)
	case "rewrap":
		n, err := w.Rewrap(ctx, func(done int) { fmt.Fprintf(stderr, "rewrapped %d\n", done) })
		docs := 0
		if err == nil && o.library != nil {
			docs, err = o.library.Rewrap(ctx, func(done int) { fmt.Fprintf(stderr, "rewrapped %d knowledge-base document(s)\n", done) })
		}
		if ss, ok := o.store.(secrets.Store); ok && err == nil {
			var n int
			n, err = secrets.New(secrets.Deps{Store: ss, Keys: kr}).Rewrap(ctx)
			docs += n
		}
		if aerr := o.audit(ctx, "keys.rewrap", kr.Current(), fmt.Sprintf("%d record(s) and %d knowledge-base document(s) or webhook secret(s) rewrapped", n, docs)); aerr != nil && err == nil {
			err = aerr
		}
		if err != nil {
			return fmt.Errorf("rewrap stopped after %d record(s) and %d document(s) (run it again to resume): %w", n, docs, err)
		}
		fmt.Fprintf(stdout, "%d record(s) and %d knowledge-base document(s) or webhook secret(s) rewrapped under %s; payloads untouched\n", n, docs, kr.Current())
	case "retire":
		if err := w.CheckRetire(ctx, id); err != nil {
			return err
		}
		if o.library != nil {
			if err := o.library.CheckRetire(ctx, id); err != nil {
				return err
			}
		}
		if ss, ok := o.store.(secrets.Store); ok {
			if err := secrets.New(secrets.Deps{Store: ss, Keys: kr}).CheckRetire(ctx, id); err != nil {
				return err
			}
		}
		if err := kr.Retire(id); err != nil {
			return err
		}
		if err := o.audit(ctx, "keys.retire", id, "retired"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s retired\n", id)
	}
	return nil
}

// opened is what an operator command on the stored data works with.
type opened struct {
	cfg    *config.Config
	writer *records.Writer
	keys   *envelope.Local
	log    *audit.Log
	store  audit.Store
	// library is the knowledge bases' documents (nil: the store keeps
	// none).
	library *library.Library
	close   func()
}

// audit records an operator's action in the audit log. Reads and purges
// are recorded before they happen (a failure stops them); changes to the
// keyring after (a failure says the change was made but not recorded).
func (o *opened) audit(ctx context.Context, event, subject, detail string) error {
	if err := o.log.Append(ctx, event, subject, detail); err != nil {
		return fmt.Errorf("%s: could not record it in the audit log: %w", event, err)
	}
	return nil
}

// openRecords opens the protected records' store, keyring and audit log
// as serve would, for an operator command.
func openRecords(ctx context.Context, cfgPath, dataDir, cmd string, getenv func(string) string) (*opened, error) {
	return openRecordsWith(ctx, cfgPath, dataDir, cmd, getenv, config.LoadStorage)
}

// openRecordsWith is openRecords reading the config with load.
func openRecordsWith(ctx context.Context, cfgPath, dataDir, cmd string, getenv func(string) string, load func(string, config.Options) (*config.Config, error)) (*opened, error) {
	return openData(ctx, cfgPath, dataDir, cmd, getenv, load, true)
}

// openData is openRecordsWith; without needErasure (voicegate secrets,
// which reads no record or document) a data directory without its
// erasure store is opened with no records writer and no library.
func openData(ctx context.Context, cfgPath, dataDir, cmd string, getenv func(string) string, load func(string, config.Options) (*config.Config, error), needErasure bool) (*opened, error) {
	cfg := config.Default()
	if cfgPath != "" {
		var err error
		if cfg, err = load(cfgPath, config.Options{Getenv: getenv}); err != nil {
			return nil, err
		}
	} else if dataDir == "" {
		return nil, &UsageError{Msg: cmd + " needs --config FILE or --data-dir DIR"}
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	type store interface {
		records.Store
		audit.Store
	}
	var st store
	var closeStore func()
	switch cfg.Storage.Driver {
	case storage.DriverPostgres:
		db, err := postgres.Open(ctx, cfg.Storage.PostgresURL, postgres.Options{MaxConns: 2})
		if err != nil {
			return nil, err
		}
		st, closeStore = db, func() { db.Close() }
	default:
		// Existing data only: a mistyped directory is an error, not a new
		// empty database.
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "voicegate.db")); err != nil {
			return nil, fmt.Errorf("no database in %s: has voicegate served with this data_dir?", cfg.DataDir)
		}
		db, err := sqlite.Open(ctx, cfg.DataDir, cfg.Storage.SQLite())
		if err != nil {
			return nil, err
		}
		st, closeStore = db, func() { db.Close() }
	}
	kr, err := openKeyring(cfg)
	if err != nil {
		closeStore()
		return nil, err
	}
	shared := cfg.Storage.Driver == storage.DriverPostgres
	if _, err := os.Stat(filepath.Join(cfg.DataDir, erasure.FileName)); err != nil && !needErasure && !shared {
		o := &opened{cfg: cfg, keys: kr, store: st, close: closeStore}
		if o.log, err = app.OpenAudit(ctx, st, cfg.DataDir, kr, cliActor(), time.Now); err != nil {
			closeStore()
			return nil, err
		}
		return o, nil
	} else if err != nil && !shared {
		closeStore()
		return nil, fmt.Errorf("no erasure store %s in %s: restore it from its backup (without it no record can be read)", erasure.FileName, cfg.DataDir)
	}
	// As serve opens it: erasure.db in data_dir, or PostgreSQL's (shared
	// by the replicas).
	erasures, err := app.OpenErasure(ctx, cfg, st, st, slog.New(slog.DiscardHandler))
	if err != nil {
		closeStore()
		return nil, err
	}
	closeAll := func() { erasures.Close(); closeStore() }
	log, err := app.OpenAudit(ctx, st, cfg.DataDir, kr, cliActor(), time.Now)
	if err != nil {
		closeAll()
		return nil, err
	}
	w := records.NewWriter(records.Deps{Store: st, Keys: kr, Secrets: erasures, LookupKey: kr.LookupKey(),
		Redaction: cfg.Records.Redaction, Random: rand.Reader, Now: time.Now})
	o := &opened{cfg: cfg, writer: w, keys: kr,
		log: log, store: st, close: closeAll}
	if ls, ok := st.(library.Store); ok {
		o.library = library.New(library.Deps{Store: ls, Keys: kr, LookupKey: kr.LookupKey(), Erasure: erasures, Random: rand.Reader, Now: time.Now})
	}
	return o, nil
}

// cliActor names the operator in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

// openKeyring opens the records keyring serve uses (records.keyring_env,
// or the keyring file, which must exist: an operator command never makes
// one).
func openKeyring(cfg *config.Config) (*envelope.Local, error) {
	if cfg.Records.KeyringEnv != "" {
		return envelope.LoadEnv(cfg.Records.KeyringEnv, cfg.Records.KeyringJSON, rand.Reader)
	}
	return envelope.OpenFile(cfg.Records.KeyringPath(cfg.DataDir), rand.Reader, time.Now)
}
