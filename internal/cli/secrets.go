package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/secrets"
)

const secretsUsage = `voicegate secrets status --config FILE
voicegate secrets rotate [--grace 24h] [--wait] --config FILE
voicegate secrets rotate --resume [--wait] --config FILE`

// cliLease is how long a rotate's lease lasts unless renewed; leaseWait
// how long rotate waits for another process's (a variable for tests).
const cliLease = 30 * time.Second

var leaseWait = 45 * time.Second

var errLeaseHeld = errors.New("another process is running the rotation now (serve's scheduled rotation, or another rotate): see voicegate secrets status, and try again")

// runSecrets shows and rotates the managed webhook secret. Every step is
// audited; a rotation interrupted anywhere leaves both secrets accepted
// and resumes with --resume.
func runSecrets(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' && args[0] != "-h" && args[0] != "--help" {
		return &UsageError{Msg: "secrets needs status or rotate\n" + secretsUsage}
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, secretsUsage)
		return nil
	case "status", "rotate":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown secrets command %q\n%s", sub, secretsUsage)}
	}
	fs := newFlagSet("secrets "+sub, stderr)
	cfgPath := fs.String("config", "", "voicegate config (data_dir, storage, records and the managed vapi.auth entry, vapi.api, vapi.public_url)")
	graceFlag := fs.String("grace", "", "how long the old secret stays accepted after Vapi switched (default vapi.rotation.grace, 24h); e.g. 6s, 24h, 90d")
	resume := fs.Bool("resume", false, "carry on the rotation in progress from its last step")
	wait := fs.Bool("wait", false, "wait through the grace period and retire the old secret (else serve does it)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return &UsageError{Msg: "secrets " + sub + " needs --config FILE"}
	}
	if sub == "status" && (*graceFlag != "" || *resume || *wait) {
		return &UsageError{Msg: "secrets status takes only --config"}
	}
	if *resume && *graceFlag != "" {
		return &UsageError{Msg: "--grace is set when a rotation starts, not on --resume"}
	}
	o, err := openData(ctx, *cfgPath, "", "secrets "+sub, getenv, config.LoadSecrets, false)
	if err != nil {
		return err
	}
	defer o.close()
	st, ok := o.store.(secrets.Store)
	if !ok {
		return errors.New("this store keeps no webhook secrets")
	}
	m := secrets.New(secrets.Deps{Store: st, Keys: o.keys})
	if sub == "status" {
		s, err := secrets.Status(ctx, m, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, s)
		return nil
	}
	grace := o.cfg.Vapi.Rotation.Grace.D()
	if *graceFlag != "" {
		if grace, err = confval.ParseDuration(*graceFlag); err != nil || grace < time.Second {
			return &UsageError{Msg: fmt.Sprintf("--grace %q: a duration such as 6s, 24h or 90d", *graceFlag)}
		}
		if grace < time.Minute {
			fmt.Fprintf(stderr, "warning: a grace period of %s: a call Vapi started before the switch may still sign with the old secret after it (tests only; use hours in production)\n", grace)
		}
	}
	api, err := vapiWebhooks(o)
	if err != nil {
		return err
	}
	r := &secrets.Rotator{M: m, Vapi: api, Audit: o.audit,
		Progress: func(step secrets.Step, detail string) { fmt.Fprintf(stdout, "%-10s %s\n", step, detail) }}
	// One process runs a rotation's steps at a time: serve's scheduled
	// rotation holds the same lease while it runs.
	host, _ := os.Hostname()
	holder := fmt.Sprintf("cli:%s:%d", host, os.Getpid())
	// The lease is short and renewed while the steps run, so that a
	// rotate killed midway holds up a --resume for cliLease at most; a
	// lease held by another process is waited for up to leaseWait.
	withLease := func(f func() error) error {
		err := m.WithLease(ctx, secrets.RotationLease, holder, cliLease, leaseWait,
			func() { fmt.Fprintln(stdout, "waiting   another process is running the rotation's steps") }, f)
		if errors.Is(err, secrets.ErrLeaseHeld) {
			return errLeaseHeld
		}
		return err
	}
	var rot secrets.Rotation
	err = withLease(func() error {
		var err error
		if *resume {
			rot, err = r.Resume(ctx)
		} else {
			rot, err = r.Start(ctx, grace)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w\nboth secrets stay accepted; see voicegate secrets status, then voicegate secrets rotate --resume", err)
	}
	if rot.Step == secrets.StepNone || rot.Step == secrets.StepRetired {
		fmt.Fprintln(stdout, "no rotation in progress")
		return nil
	}
	if !*wait {
		fmt.Fprintf(stdout, "the old secret is accepted until %s; then serve retires it (or: voicegate secrets rotate --resume --wait)\n", rot.RetireAt.UTC().Format(time.RFC3339))
		return nil
	}
	for {
		if d := time.Until(rot.RetireAt); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var done bool
		if err := withLease(func() error {
			var err error
			done, err = r.RetireDue(ctx)
			return err
		}); err != nil && !errors.Is(err, errLeaseHeld) {
			return err
		}
		if done {
			return nil
		}
		// Retired meanwhile by serve?
		if cur, err := m.Rotation(ctx); err == nil && cur.Step == secrets.StepRetired {
			fmt.Fprintln(stdout, "retired   the old secret was retired by serve")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
