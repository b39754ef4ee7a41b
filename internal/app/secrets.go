package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/vapiapi"
)

// SecretsPoll is how often serve reads the managed secrets: a rotation's
// new secret is accepted within it.
const SecretsPoll = 2 * time.Second

// rotationCheck is how often serve looks for a rotation to run, resume or
// finish.
const rotationCheck = 30 * time.Second

// managed says whether a vapi.auth entry is managed.
func managed(cfg *config.Config) bool {
	for _, a := range cfg.Vapi.Auth {
		if a.Managed {
			return true
		}
	}
	return false
}

// openSecrets sets up the managed webhook secrets: the first one created
// when there is none, loaded before the first request.
func (a *App) openSecrets(ctx context.Context, cfg *config.Config, store calls.Store) error {
	st, ok := store.(secrets.Store)
	if !ok || a.keys == nil {
		return fmt.Errorf("vapi.auth: a managed entry needs the records' keyring and a store that keeps secrets")
	}
	a.Secrets = secrets.New(secrets.Deps{Store: st, Keys: a.keys, Random: rand.Reader, Now: a.now})
	s, created, err := a.Secrets.Ensure(ctx)
	if err != nil {
		return fmt.Errorf("vapi.auth managed secret: %w", err)
	}
	if created {
		a.AuditEvent("secrets.create", s.ID, fmt.Sprintf("generation %d: the first managed webhook secret", s.Generation))
		a.log.Info("managed webhook secret created: give it to Vapi with voicegate vapi apply (or secrets rotate)", logkey.Count, s.Generation)
	}
	if cfg.Vapi.API.Enabled() {
		c, err := vapiapi.New(cfg.Vapi.API, vapiapi.Options{Log: a.log.With(logkey.Component, "vapi-api")})
		if err != nil {
			return err
		}
		a.vapiRotation = &vapiapi.Webhooks{API: c, URL: vapiapi.WebhookURL(cfg.Vapi.PublicURL, cfg.Vapi.Path)}
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	a.process = fmt.Sprintf("%s:%d:%s", strings.ReplaceAll(host, ":", "_"), os.Getpid(), hex.EncodeToString(b))
	return a.loadSecrets(ctx)
}

// loadSecrets reads the managed secrets, puts them in force when they
// changed, and reports the generation this process has loaded.
func (a *App) loadSecrets(ctx context.Context) error {
	all, err := a.Secrets.Secrets(ctx)
	if err != nil {
		// Still serving, with the secrets in force: say so, so that a
		// rotation waits for this process (and reports it behind)
		// instead of taking it for gone once its last report is old and
		// switching Vapi to a secret it refuses.
		if rerr := a.Secrets.ReportLoaded(ctx, a.process, a.secretSource.Generation()); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	acc, gen := secrets.Accepted(all)
	var fp strings.Builder
	for _, s := range all {
		fmt.Fprintf(&fp, "%s/%d;", s.ID, s.NotAfter.UnixMilli())
	}
	if fp.String() != a.secretsPrint {
		a.secretSource.Set(acc, gen)
		a.secretsPrint = fp.String()
		a.log.Info("managed webhook secrets loaded", logkey.Generation, gen, logkey.Count, len(acc))
	}
	return a.Secrets.ReportLoaded(ctx, a.process, gen)
}

// watchSecrets reloads the managed secrets every SecretsPoll until ctx
// ends; a failure is counted and logged once a minute at most (the
// secrets in force stay).
func (a *App) watchSecrets(ctx context.Context) {
	var lastLog time.Time
	periodic.Run(ctx, SecretsPoll, func() {
		if err := a.loadSecrets(ctx); err != nil && ctx.Err() == nil {
			a.Metrics.StoreErrors.WithLabelValues("load_secrets").Inc()
			if a.now().Sub(lastLog) >= time.Minute {
				lastLog = a.now()
				a.log.Error("managed webhook secrets not reloaded: the ones in force stay", logkey.Err, err)
			}
		}
	})
}

// rotateSecrets runs the scheduled rotation (vapi.rotation.every),
// resumes one that stopped, and retires the old secret once its grace
// period is over — in one process at a time (a lease in the database).
func (a *App) rotateSecrets(ctx context.Context) {
	periodic.Run(ctx, rotationCheck, func() { a.rotationTick(ctx) })
}

func (a *App) rotationTick(ctx context.Context) {
	// Held while the steps run, renewed: a serve killed midway holds the
	// others up for rotationLease at most.
	a.Secrets.WithLease(ctx, secrets.RotationLease, a.process, rotationLease, 0, nil, func() error {
		a.rotationSteps(ctx)
		return nil
	})
}

// rotationLease is how long serve's hold on the rotation lasts unless
// renewed.
const rotationLease = 30 * time.Second

func (a *App) rotationSteps(ctx context.Context) {
	r := a.rotator()
	now := a.now()
	if done, err := r.RetireDue(ctx); err != nil {
		a.log.Error("retiring the old webhook secret failed: it stays accepted until this succeeds", logkey.Err, err)
		return
	} else if done {
		a.log.Info("old webhook secret retired")
	}
	rot, err := a.Secrets.Rotation(ctx)
	if err != nil {
		return
	}
	switch {
	case rot.Step != secrets.StepNone && rot.Step != secrets.StepRetired && rot.Step != secrets.StepSwitched:
		if _, err := r.Resume(ctx); err != nil {
			a.log.Error("webhook secret rotation stopped: both secrets stay accepted; it resumes at the next check", logkey.Err, err)
		}
	case rot.Step == secrets.StepSwitched:
	default:
		cfg := a.currentConfig()
		every := cfg.Vapi.Rotation.Every.D()
		if every <= 0 {
			return
		}
		all, err := a.Secrets.Secrets(ctx)
		if err != nil || len(all) == 0 || now.Sub(all[len(all)-1].CreatedAt) < every {
			return
		}
		a.log.Info("scheduled webhook secret rotation starting", logkey.Setting, "vapi.rotation.every")
		if _, err := r.Start(ctx, cfg.Vapi.Rotation.Grace.D()); err != nil {
			a.log.Error("webhook secret rotation stopped: both secrets stay accepted; it resumes at the next check", logkey.Err, err)
		}
	}
}

// rotator is the rotation with this process's Vapi client and audit log.
func (a *App) rotator() *secrets.Rotator {
	return &secrets.Rotator{M: a.Secrets, Vapi: a.vapiRotation,
		Audit: func(ctx context.Context, event, subject, detail string) error {
			if a.Audit == nil {
				return nil
			}
			return a.Audit.Append(ctx, event, subject, detail)
		}}
}
