package secrets

import (
	"context"
	"errors"
	"fmt"
)

// Credentials gives voicegate vapi apply the Vapi credential that every
// assistant, phone number and tool served by this voicegate references:
// the one holding the secret Vapi signs with now — during a rotation not
// yet switched, the old one. On apply, the first secret and its
// credential are created when there are none (no separate init step).
type Credentials struct {
	M    *Manager
	Vapi Vapi
	// Audit records a creation (event, subject, detail); a creation that
	// cannot be audited is not made.
	Audit func(ctx context.Context, event, subject, detail string) error
}

// CredentialID implements gitops.Credentials.
func (c *Credentials) CredentialID(ctx context.Context, create bool) (string, error) {
	s, err := c.current(ctx)
	if err != nil {
		return "", err
	}
	if !create {
		return s.CredentialID, nil // "" when there is none yet
	}
	if s.ID == "" {
		var created bool
		if s, created, err = c.M.Ensure(ctx); err != nil {
			return "", err
		}
		if created {
			if err := c.audit(ctx, "secrets.create", s.ID, fmt.Sprintf("generation %d: the first managed webhook secret", s.Generation)); err != nil {
				return "", err
			}
		}
	}
	if s.CredentialID != "" {
		return s.CredentialID, nil
	}
	if c.Vapi == nil {
		return "", errors.New("vapi.api is not configured: voicegate cannot create its webhook credential")
	}
	id, err := c.Vapi.EnsureCredential(ctx, CredentialName(s), s.Value)
	if err != nil {
		return "", fmt.Errorf("create the Vapi webhook credential: %w", err)
	}
	if err := c.M.store.SetSecretCredential(ctx, s.ID, id); err != nil {
		return "", err
	}
	if err := c.audit(ctx, "secrets.credential", s.ID, "Vapi credential "+id+" holds the managed secret"); err != nil {
		return "", err
	}
	return id, nil
}

// current is the secret Vapi signs with (zero when there is none): the
// rotation's old one until it switched, else the newest accepted.
func (c *Credentials) current(ctx context.Context) (Secret, error) {
	all, err := c.M.Secrets(ctx)
	if err != nil {
		return Secret{}, err
	}
	rot, err := c.M.store.Rotation(ctx)
	if err != nil {
		return Secret{}, err
	}
	switch rot.Step {
	case StepAdded, StepLoaded, StepCredential:
		for _, s := range all {
			if s.ID == rot.From {
				return s, nil
			}
		}
	}
	now := c.M.now()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Live(now) {
			return all[i], nil
		}
	}
	return Secret{}, nil
}

func (c *Credentials) audit(ctx context.Context, event, subject, detail string) error {
	return auditStep(ctx, c.Audit, event, subject, detail)
}
