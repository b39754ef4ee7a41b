package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/gitops"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/vapiapi"
)

const vapiOpsUsage = `voicegate vapi plan  -f DIR --config FILE [--prune] [--tools-from-config] [--state FILE]
voicegate vapi apply -f DIR --config FILE [--prune] [--overwrite] [--dry-run] [--tools-from-config] [--state FILE]`

// runVapiOps plans or applies an org folder of Vapi resources (the
// VapiAI/gitops layout) against Vapi's API. plan exits 0 whether or not
// there are changes (1 on an error); apply exits 1 when it refuses a
// conflict.
func runVapiOps(ctx context.Context, sub string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vapi "+sub, stderr)
	dir := fs.String("f", "", "the org's folder: assistants/, tools/, squads/, structuredOutputs/, phoneNumbers/ (required)")
	cfgPath := fs.String("config", "", "voicegate config: vapi.api (the key), vapi.public_url, the tools, data_dir and storage (required)")
	prune := fs.Bool("prune", false, "delete the resources voicegate manages whose file is gone")
	overwrite := fs.Bool("overwrite", false, "apply: take the files' value where a field changed both in Vapi and in the files")
	dryRun := fs.Bool("dry-run", false, "apply: only print the plan")
	fromConfig := fs.Bool("tools-from-config", false, "also manage a Vapi tool for each of voicegate's tools (name, description, schema, this voicegate as server)")
	statePath := fs.String("state", "", "VapiAI/gitops' state file (default: .vapi-state.<org>.json beside resources/, used when it exists; given, it is created)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *cfgPath == "" {
		return &UsageError{Msg: "vapi " + sub + " needs -f DIR and --config FILE\n" + vapiOpsUsage}
	}
	if sub == "plan" && (*overwrite || *dryRun) {
		return &UsageError{Msg: "--overwrite and --dry-run are apply's (plan changes nothing)"}
	}
	cfg, err := config.LoadVapiOps(*cfgPath, config.Options{Getenv: getenv})
	if err != nil {
		return err
	}
	api, err := vapiapi.New(cfg.Vapi.API, vapiapi.Options{})
	if err != nil {
		return err
	}
	st, closeStore, err := openGitopsStore(ctx, cfg, sub == "plan" || *dryRun)
	if err != nil {
		return err
	}
	defer closeStore()
	creds, err := managedCredential(cfg, st, api, sub == "apply" && !*dryRun)
	if err != nil {
		return err
	}
	why := "no vapi.auth entry is managed (mark one managed: true: voicegate then keeps the webhook secret, sets its credential here and rotates it)"
	if managedEntry(cfg) {
		why = "voicegate's managed secret and its Vapi credential do not exist yet: the first apply creates them"
	}
	o := gitops.Options{
		Dir: *dir, StatePath: *statePath, CreateState: *statePath != "", API: api, Store: st, Credentials: creds, NoCredentials: why,
		Voicegate: gitops.Voicegate{URL: vapiapi.WebhookURL(cfg.Vapi.PublicURL, cfg.Vapi.Path), ServerTimeout: cfg.Vapi.ServerTimeout.D(),
			Tools: cfg.Tools, BargeIn: cfg.Bargein.Enabled},
		ToolsFromConfig: *fromConfig, Prune: *prune, Overwrite: *overwrite, Out: stdout,
	}
	if sub == "plan" || *dryRun {
		_, err = gitops.Plan(ctx, o)
		if err == nil && *dryRun {
			fmt.Fprintln(stdout, "dry run: nothing was changed")
		}
		return err
	}
	// One apply per org at a time, across processes on the store.
	org := filepath.Base(filepath.Clean(*dir))
	holder := fmt.Sprintf("%s:%d", cliActor(), os.Getpid())
	if ls, ok := st.(secrets.Store); ok {
		now := time.Now()
		got, err := ls.TakeLease(ctx, "vapi.apply:"+org, holder, now, now.Add(15*time.Minute))
		if err != nil {
			return err
		}
		if !got {
			return fmt.Errorf("another voicegate vapi apply of org %s is running: try again when it is done", org)
		}
		defer ls.ReleaseLease(context.WithoutCancel(ctx), "vapi.apply:"+org, holder)
	}
	sum, err := gitops.Apply(ctx, o)
	if as, ok := st.(audit.Store); ok {
		detail := fmt.Sprintf("%d created, %d updated, %d deleted", sum.Created, sum.Updated, sum.Deleted)
		if err != nil {
			detail += "; stopped: " + err.Error()
		}
		log, aerr := openAuditLog(ctx, cfg, as)
		if aerr == nil {
			aerr = log.Append(context.WithoutCancel(ctx), "vapi.apply", "org:"+org, detail)
		}
		if aerr != nil && err == nil {
			err = fmt.Errorf("applied (%s), but not recorded in the audit log: %w", detail, aerr)
		}
	}
	return err
}

// openGitopsStore opens the store that keeps the ids of what voicegate
// manages in Vapi: SQLite in data_dir (created when voicegate has never
// served there: apply needs no serve first; a plan creates nothing, and
// without a database knows no ids) or PostgreSQL.
func openGitopsStore(ctx context.Context, cfg *config.Config, readOnly bool) (gitops.Store, func(), error) {
	if cfg.Storage.Driver == storage.DriverPostgres {
		db, err := postgres.Open(ctx, cfg.Storage.PostgresURL, postgres.Options{MaxConns: 2})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "voicegate.db")); readOnly && errors.Is(err, os.ErrNotExist) {
		return noIDs{}, func() {}, nil
	}
	db, err := sqlite.Open(ctx, cfg.DataDir, cfg.Storage.SQLite())
	if err != nil {
		return nil, nil, err
	}
	return db, func() { db.Close() }, nil
}

// managedCredential gives plan and apply voicegate's managed webhook
// credential, which every assistant, phone number and tool served by this
// voicegate gets as server.credentialId: internal/secrets' Credentials,
// creating the managed secret (and the keyring, when serve has not yet)
// and its Vapi credential on the first apply. Nil without a managed
// vapi.auth entry (server.credentialId stays as the files say), or on a
// plan before voicegate has a database or keyring (nothing exists yet).
func managedCredential(cfg *config.Config, st gitops.Store, api *vapiapi.Client, create bool) (gitops.Credentials, error) {
	ss, ok := st.(secrets.Store)
	if !managedEntry(cfg) || !ok {
		return nil, nil
	}
	var kr *envelope.Local
	var err error
	switch {
	case cfg.Records.KeyringEnv != "":
		kr, err = envelope.LoadEnv(cfg.Records.KeyringEnv, cfg.Records.KeyringJSON, rand.Reader)
	case create:
		kr, err = envelope.LoadFile(cfg.Records.KeyringPath(cfg.DataDir), rand.Reader, time.Now)
	default:
		if kr, err = envelope.OpenFile(cfg.Records.KeyringPath(cfg.DataDir), rand.Reader, time.Now); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	c := &secrets.Credentials{M: secrets.New(secrets.Deps{Store: ss, Keys: kr}),
		Vapi: &vapiapi.Webhooks{API: api, URL: vapiapi.WebhookURL(cfg.Vapi.PublicURL, cfg.Vapi.Path)}}
	if as, ok := st.(audit.Store); ok {
		log, err := app.OpenAudit(context.Background(), as, cfg.DataDir, kr, cliActor(), time.Now)
		if err != nil {
			return nil, err
		}
		c.Audit = func(ctx context.Context, event, subject, detail string) error {
			return log.Append(ctx, event, subject, detail)
		}
	}
	return c, nil
}

// vapiWebhooks is what a secret rotation does in Vapi, from the config's
// vapi.api and vapi.public_url (nil when vapi.api has no key: the
// rotation then says what is missing).
func vapiWebhooks(o *opened) (secrets.Vapi, error) {
	c := o.cfg.Vapi.API
	if !c.Enabled() {
		return nil, nil
	}
	if o.cfg.Vapi.PublicURL == "" {
		return nil, errors.New("vapi.public_url is not set: voicegate cannot tell which assistants and phone numbers call it")
	}
	api, err := vapiapi.New(c, vapiapi.Options{})
	if err != nil {
		return nil, err
	}
	return &vapiapi.Webhooks{API: api, URL: vapiapi.WebhookURL(o.cfg.Vapi.PublicURL, o.cfg.Vapi.Path)}, nil
}

// noIDs is the store of a plan where voicegate has no database yet: it
// knows no resource, and a plan writes nothing.
type noIDs struct{}

func (noIDs) VapiResources(context.Context, string) ([]gitops.Entry, error) { return nil, nil }
func (noIDs) PutVapiResource(context.Context, gitops.Entry) error {
	return errors.New("internal error: a plan wrote to the store")
}
func (noIDs) DeleteVapiResource(context.Context, string, string, string) error {
	return errors.New("internal error: a plan wrote to the store")
}

// managedEntry says whether a vapi.auth entry is managed.
func managedEntry(cfg *config.Config) bool {
	for _, a := range cfg.Vapi.Auth {
		if a.Managed {
			return true
		}
	}
	return false
}
