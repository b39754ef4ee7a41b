package vapiapi

import (
	"context"
	"errors"
	"fmt"
)

// HMACPlan is the authentication plan of voicegate's managed webhook
// credential: Vapi's HMAC plan with its defaults written out (sha256,
// x-signature, x-timestamp in Unix seconds, "{timestamp}.{body}", hex) —
// what a vapi.auth entry with managed: true verifies.
func HMACPlan(secret string) map[string]any {
	return map[string]any{
		"type":              "hmac",
		"secretKey":         secret,
		"algorithm":         "sha256",
		"signatureHeader":   "x-signature",
		"timestampHeader":   "x-timestamp",
		"payloadFormat":     "{timestamp}.{body}",
		"signatureEncoding": "hex",
	}
}

// Webhooks keeps Vapi pointed at this voicegate's managed webhook
// credential: it implements what a secret rotation does in Vapi
// (internal/secrets' Vapi interface).
type Webhooks struct {
	API *Client
	// URL is this voicegate's webhook URL (WebhookURL of vapi.public_url
	// and vapi.path): the assistants, phone numbers and tools whose
	// server.url it is are the ones repointed.
	URL string
}

// EnsureCredential returns the id of the webhook credential named name,
// creating it with secret (HMACPlan) when Vapi has none of that name. A
// credential found by name is not checked against secret (Vapi never
// returns it): names are unique per secret (secrets.CredentialName).
func (w *Webhooks) EnsureCredential(ctx context.Context, name, secret string) (string, error) {
	all, err := w.API.List(ctx, Credential)
	if err != nil {
		return "", err
	}
	for _, c := range all {
		if c.Name() == name && c.String("provider") == "webhook" {
			return c.ID(), nil
		}
	}
	created, err := w.API.Create(ctx, Credential, Resource{"provider": "webhook", "name": name, "authenticationPlan": HMACPlan(secret)})
	if err != nil {
		return "", err
	}
	if created.ID() == "" {
		return "", fmt.Errorf("vapi api: POST /credential: the answer has no id")
	}
	return created.ID(), nil
}

// DeleteCredential deletes a credential; one already gone is no error.
func (w *Webhooks) DeleteCredential(ctx context.Context, id string) error {
	if err := w.API.Delete(ctx, Credential, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Repoint sets credentialId to id in every server object whose url is
// this voicegate — an assistant's, phone number's, tool's or squad's own
// server, and those nested in it: an assistant's inline tools
// (model.tools[].server), a squad's member overrides — through Modify:
// nothing else in them changes. It returns how many resources now
// reference id.
func (w *Webhooks) Repoint(ctx context.Context, id string) (int, error) {
	if w.URL == "" {
		return 0, errors.New("vapi.public_url is not set: voicegate cannot tell which assistants and phone numbers call it")
	}
	n := 0
	for _, kind := range []Kind{Assistant, PhoneNumber, Tool, Squad} {
		all, err := w.API.List(ctx, kind)
		if err != nil {
			return n, err
		}
		for _, r := range all {
			if !w.setServers(map[string]any(r), "", false) {
				continue
			}
			_, _, err := w.API.Modify(ctx, kind, r.ID(), func(r Resource) error {
				w.setServers(map[string]any(r), id, true)
				return nil
			})
			if err != nil && !errors.Is(err, ErrNotFound) {
				return n, fmt.Errorf("%s %s: %w", kind, r.ID(), err)
			}
			if err == nil {
				n++
			}
		}
	}
	return n, nil
}

// setServers finds the server objects under v (a "server" key holding an
// object) whose url is this voicegate, setting their credentialId to id
// when set is true; it reports whether there is any.
func (w *Webhooks) setServers(v any, id string, set bool) bool {
	found := false
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if srv, ok := e.(map[string]any); ok && k == "server" {
				if u, _ := srv["url"].(string); SameURL(u, w.URL) {
					found = true
					if set {
						srv["credentialId"] = id
					}
				}
			}
			if w.setServers(e, id, set) {
				found = true
			}
		}
	case []any:
		for _, e := range v {
			if w.setServers(e, id, set) {
				found = true
			}
		}
	}
	return found
}
