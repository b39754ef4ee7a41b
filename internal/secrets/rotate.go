package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/periodic"
)

// Step is a rotation's progress: each step is done once, in order, and a
// rotation interrupted at any point resumes at the next one. At every
// point both the old and the new secret are accepted, so no request
// fails because of a rotation.
type Step string

const (
	StepNone Step = ""
	// StepAdded: the new secret is stored; servers start accepting it.
	StepAdded Step = "added"
	// StepLoaded: every live server has loaded it.
	StepLoaded Step = "loaded"
	// StepCredential: a Vapi webhook credential holds it.
	StepCredential Step = "credential"
	// StepSwitched: every managed assistant and phone number references
	// the new credential, and the old secrets stop being accepted at
	// RetireAt.
	StepSwitched Step = "switched"
	// StepRetired: the old secrets are destroyed and their credentials
	// deleted: the rotation is over.
	StepRetired Step = "retired"
)

// Vapi is what a rotation does in Vapi (internal/vapiapi implements it).
type Vapi interface {
	// EnsureCredential returns the id of the webhook credential named
	// name holding secret (Vapi's HMAC plan), creating it if no
	// credential of that name exists.
	EnsureCredential(ctx context.Context, name, secret string) (string, error)
	// DeleteCredential deletes a credential (gone already is no error).
	DeleteCredential(ctx context.Context, id string) error
	// Repoint sets credentialId to id in every server object whose url is
	// this voicegate — of assistants, phone numbers, tools and squads,
	// nested ones (inline tools, squad overrides) included — and returns
	// how many resources reference id.
	Repoint(ctx context.Context, id string) (int, error)
}

// Rotator rotates the managed secret.
type Rotator struct {
	M    *Manager
	Vapi Vapi
	// Audit records each step (event, subject, detail); a step that cannot
	// be audited is not taken.
	Audit func(ctx context.Context, event, subject, detail string) error
	// LiveWithin: a server that reported within it is live (default 15s).
	LiveWithin time.Duration
	// WaitLoaded bounds the wait for live servers to load the new secret
	// (default 2m).
	WaitLoaded time.Duration
	// Sleep waits between checks (nil: time.Sleep under ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// Progress, if set, is told each step as it is done.
	Progress func(step Step, detail string)
}

// RotationLease is the lease a process holds while it runs a rotation's
// steps (serve's scheduled rotation, voicegate secrets rotate): one at a
// time.
const RotationLease = "secrets.rotation"

// DefaultLiveWithin: a server that reported within it is live (the
// rotation waits for it, status lists it).
const DefaultLiveWithin = 15 * time.Second

// ErrInProgress is a rotation started while another is not finished.
var ErrInProgress = errors.New("a rotation is in progress")

// CredentialName names the Vapi credential of a secret, so that a resumed
// step finds the credential a killed one created.
func CredentialName(s Secret) string { return "voicegate-webhook-" + s.ID }

func (r *Rotator) defaults() {
	if r.LiveWithin == 0 {
		r.LiveWithin = DefaultLiveWithin
	}
	if r.WaitLoaded == 0 {
		r.WaitLoaded = 2 * time.Minute
	}
	if r.Sleep == nil {
		r.Sleep = periodic.Sleep
	}
}

// Start begins a rotation with grace period grace and runs it up to the
// switch (Resume). A rotation not yet retired is ErrInProgress: resume it.
func (r *Rotator) Start(ctx context.Context, grace time.Duration) (Rotation, error) {
	r.defaults()
	cur, err := r.M.store.Rotation(ctx)
	if err != nil {
		return cur, err
	}
	if cur.Step == StepSwitched {
		// The last one's grace period may be over: finish it first.
		if _, err := r.RetireDue(ctx); err != nil {
			return cur, err
		}
		if cur, err = r.M.store.Rotation(ctx); err != nil {
			return cur, err
		}
	}
	if cur.Step != StepNone && cur.Step != StepRetired {
		return cur, fmt.Errorf("%w (step %s): voicegate secrets rotate --resume", ErrInProgress, cur.Step)
	}
	from, _, err := r.M.Ensure(ctx)
	if err != nil {
		return cur, err
	}
	if err := r.audit(ctx, "secrets.rotate.start", from.ID, fmt.Sprintf("generation %d to be replaced; grace %s", from.Generation, grace)); err != nil {
		return cur, err
	}
	to, err := r.M.Add(ctx)
	if err != nil {
		return cur, err
	}
	next := Rotation{Step: StepAdded, From: from.ID, To: to.ID, Grace: grace, UpdatedAt: r.M.now()}
	if err := r.M.store.PutRotation(ctx, next); err != nil {
		return cur, err
	}
	if err := r.audit(ctx, "secrets.rotate.added", to.ID, fmt.Sprintf("generation %d stored: accepted by every server within seconds", to.Generation)); err != nil {
		return next, err
	}
	r.progress(StepAdded, fmt.Sprintf("new secret generation %d stored", to.Generation))
	return r.Resume(ctx)
}

// Resume carries the rotation on from its last step up to the switch;
// the retirement waits for the grace period (RetireDue). Every step is
// audited; a failure is recorded in the rotation and returned.
func (r *Rotator) Resume(ctx context.Context) (Rotation, error) {
	r.defaults()
	rot, err := r.M.store.Rotation(ctx)
	if err != nil {
		return rot, err
	}
	fail := func(err error) (Rotation, error) {
		rot.Error, rot.UpdatedAt = err.Error(), r.M.now()
		r.M.store.PutRotation(context.WithoutCancel(ctx), rot)
		return rot, err
	}
	advance := func(step Step, event, subject, detail string) error {
		if err := r.audit(ctx, event, subject, detail); err != nil {
			return err
		}
		rot.Step, rot.Error, rot.UpdatedAt = step, "", r.M.now()
		if err := r.M.store.PutRotation(ctx, rot); err != nil {
			return err
		}
		r.progress(step, detail)
		return nil
	}
	for {
		switch rot.Step {
		case StepNone, StepRetired:
			return rot, nil
		case StepSwitched:
			return rot, nil // RetireDue finishes it
		case StepAdded:
			to, err := r.secret(ctx, rot.To)
			if err != nil {
				return fail(err)
			}
			if err := r.waitLoaded(ctx, to.Generation); err != nil {
				return fail(err)
			}
			if err := advance(StepLoaded, "secrets.rotate.loaded", to.ID, fmt.Sprintf("every live server accepts generation %d", to.Generation)); err != nil {
				return fail(err)
			}
		case StepLoaded:
			to, err := r.secret(ctx, rot.To)
			if err != nil {
				return fail(err)
			}
			if r.Vapi == nil {
				return fail(errors.New("vapi.api is not configured: voicegate cannot create the Vapi credential (set vapi.api.key)"))
			}
			id, err := r.Vapi.EnsureCredential(ctx, CredentialName(to), to.Value)
			if err != nil {
				return fail(fmt.Errorf("create the Vapi credential: %w", err))
			}
			if err := r.M.store.SetSecretCredential(ctx, to.ID, id); err != nil {
				return fail(err)
			}
			if err := advance(StepCredential, "secrets.rotate.credential", to.ID, "Vapi credential "+id+" holds the new secret"); err != nil {
				return fail(err)
			}
		case StepCredential:
			to, err := r.secret(ctx, rot.To)
			if err != nil {
				return fail(err)
			}
			n, err := r.Vapi.Repoint(ctx, to.CredentialID)
			if err != nil {
				return fail(fmt.Errorf("point the assistants and phone numbers at the new credential: %w", err))
			}
			// The old secrets stay accepted through the grace period.
			rot.RetireAt = r.M.now().Add(rot.Grace)
			all, err := r.M.Secrets(ctx)
			if err != nil {
				return fail(err)
			}
			for _, s := range all {
				if s.ID != to.ID && (s.NotAfter.IsZero() || s.NotAfter.After(rot.RetireAt)) {
					if err := r.M.store.SetSecretNotAfter(ctx, s.ID, rot.RetireAt); err != nil {
						return fail(err)
					}
				}
			}
			if err := advance(StepSwitched, "secrets.rotate.switched", to.ID, fmt.Sprintf("%d assistant(s) and phone number(s) reference credential %s; the old secret is accepted until %s",
				n, to.CredentialID, rot.RetireAt.UTC().Format(time.RFC3339))); err != nil {
				return fail(err)
			}
		default:
			return rot, fmt.Errorf("unknown rotation step %q", rot.Step)
		}
	}
}

// RetireDue finishes a switched rotation whose grace period is over: the
// old secrets are destroyed and their Vapi credentials deleted. It reports
// whether it did. Secrets past their not_after outside a rotation (an
// interrupted one's leftovers) are retired too.
func (r *Rotator) RetireDue(ctx context.Context) (bool, error) {
	r.defaults()
	rot, err := r.M.store.Rotation(ctx)
	if err != nil {
		return false, err
	}
	now := r.M.now()
	if rot.Step != StepSwitched || now.Before(rot.RetireAt) {
		return false, nil
	}
	all, err := r.M.Secrets(ctx)
	if err != nil {
		return false, err
	}
	var retired []string
	for _, s := range all {
		if s.ID == rot.To || s.NotAfter.IsZero() || now.Before(s.NotAfter) {
			continue
		}
		if s.CredentialID != "" && r.Vapi != nil {
			if err := r.Vapi.DeleteCredential(ctx, s.CredentialID); err != nil {
				return false, fmt.Errorf("delete the old Vapi credential: %w", err)
			}
		}
		if err := r.M.store.RetireSecret(ctx, s.ID); err != nil {
			return false, err
		}
		retired = append(retired, fmt.Sprint(s.Generation))
	}
	detail := "old secret generation(s) " + strings.Join(retired, ", ") + " destroyed, their credentials deleted"
	if err := r.audit(ctx, "secrets.rotate.retired", rot.To, detail); err != nil {
		return false, err
	}
	rot.Step, rot.Error, rot.UpdatedAt = StepRetired, "", now
	if err := r.M.store.PutRotation(ctx, rot); err != nil {
		return false, err
	}
	r.progress(StepRetired, detail)
	return true, nil
}

func (r *Rotator) secret(ctx context.Context, id string) (Secret, error) {
	all, err := r.M.Secrets(ctx)
	if err != nil {
		return Secret{}, err
	}
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
	}
	return Secret{}, fmt.Errorf("webhook secret %s: %w", id, ErrNotFound)
}

// waitLoaded waits until every server that reported within LiveWithin has
// loaded generation gen (none running: nothing to wait for).
func (r *Rotator) waitLoaded(ctx context.Context, gen int64) error {
	deadline := r.M.now().Add(r.WaitLoaded)
	for {
		ls, err := r.M.store.Loaders(ctx)
		if err != nil {
			return err
		}
		now := r.M.now()
		var behind []string
		for _, l := range ls {
			if now.Sub(l.SeenAt) <= r.LiveWithin && l.Generation < gen {
				behind = append(behind, fmt.Sprintf("%s (generation %d)", l.Process, l.Generation))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if !now.Before(deadline) {
			return fmt.Errorf("after %s, live servers still have not loaded generation %d: %s (is their keyring the same?)", r.WaitLoaded, gen, strings.Join(behind, ", "))
		}
		if err := r.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

func (r *Rotator) audit(ctx context.Context, event, subject, detail string) error {
	return auditStep(ctx, r.Audit, event, subject, detail)
}

// auditStep records a step with audit (nil: none); a step that cannot be
// audited is not taken.
func auditStep(ctx context.Context, audit func(ctx context.Context, event, subject, detail string) error, event, subject, detail string) error {
	if audit == nil {
		return nil
	}
	if err := audit(ctx, event, subject, detail); err != nil {
		return fmt.Errorf("%s: not recorded in the audit log, so not done: %w", event, err)
	}
	return nil
}

func (r *Rotator) progress(step Step, detail string) {
	if r.Progress != nil {
		r.Progress(step, detail)
	}
}

// Status describes the rotation and the secrets for an operator.
func Status(ctx context.Context, m *Manager, now time.Time) (string, error) {
	rot, err := m.store.Rotation(ctx)
	if err != nil {
		return "", err
	}
	all, err := m.store.ListSecrets(ctx)
	if err != nil {
		return "", err
	}
	ls, err := m.store.Loaders(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintln(&b, "secrets:")
	if len(all) == 0 {
		fmt.Fprintln(&b, "  none yet (serve or vapi apply creates the first)")
	}
	for _, s := range all {
		state := "accepted"
		if !s.NotAfter.IsZero() {
			if now.Before(s.NotAfter) {
				state = "accepted until " + s.NotAfter.UTC().Format(time.RFC3339)
			} else {
				state = "expired at " + s.NotAfter.UTC().Format(time.RFC3339) + " (retired at the rotation's end)"
			}
		}
		cred := s.CredentialID
		if cred == "" {
			cred = "none yet"
		}
		fmt.Fprintf(&b, "  generation %d  %s  created %s  %s  Vapi credential %s\n", s.Generation, s.ID, s.CreatedAt.UTC().Format(time.RFC3339), state, cred)
	}
	fmt.Fprintln(&b, "servers:")
	live := 0
	for _, l := range ls {
		if now.Sub(l.SeenAt) <= DefaultLiveWithin {
			live++
			fmt.Fprintf(&b, "  %s  generation %d  seen %s ago\n", l.Process, l.Generation, now.Sub(l.SeenAt).Round(time.Second))
		}
	}
	if live == 0 {
		fmt.Fprintln(&b, "  none running")
	}
	fmt.Fprint(&b, "rotation: ")
	switch rot.Step {
	case StepNone:
		fmt.Fprintln(&b, "none has run")
	case StepRetired:
		fmt.Fprintf(&b, "the last one finished at %s\n", rot.UpdatedAt.UTC().Format(time.RFC3339))
	case StepSwitched:
		fmt.Fprintf(&b, "switched; the old secret is accepted until %s, then serve (or rotate --resume) retires it\n", rot.RetireAt.UTC().Format(time.RFC3339))
	default:
		next := map[Step]string{StepAdded: "wait for every live server to load the new secret", StepLoaded: "create the Vapi credential holding the new secret",
			StepCredential: "point the managed assistants and phone numbers at it, then start the grace period"}[rot.Step]
		fmt.Fprintf(&b, "in progress, at step %q; rotate --resume will %s\n", rot.Step, next)
	}
	if rot.Error != "" {
		fmt.Fprintf(&b, "last error: %s\n", rot.Error)
	}
	return b.String(), nil
}
