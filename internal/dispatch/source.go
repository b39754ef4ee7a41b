package dispatch

import (
	"context"
	"errors"
	"github.com/voicegate/voicegate/internal/allowlist"
	"net/http"
	"sync/atomic"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/vapi"
	"github.com/voicegate/voicegate/internal/webhook"
)

// Source is the Vapi webhook source: the server URL of Vapi assistants,
// served at vapi.path. Safe for concurrent use.
type Source struct {
	path  string
	types []string
	ep    atomic.Pointer[webhook.Endpoint]
}

var _ webhook.Source = (*Source)(nil)

// NewSource returns the source served at path, answering with ep until Swap.
func NewSource(path string, ep *webhook.Endpoint) *Source {
	s := &Source{path: path, types: append(append([]string(nil), vapi.KnownTypes...), "unknown", "none")}
	s.ep.Store(ep)
	return s
}

// Name implements webhook.Source.
func (s *Source) Name() string { return "vapi" }

// Path implements webhook.Source.
func (s *Source) Path() string { return s.path }

// Types implements webhook.Source: Vapi's known message types, "unknown"
// for others and "none" for a body that is not a message.
func (s *Source) Types() []string { return s.types }

// Endpoint implements webhook.Source.
func (s *Source) Endpoint() *webhook.Endpoint { return s.ep.Load() }

// Swap makes ep the endpoint of every request that starts from now on.
func (s *Source) Swap(ep *webhook.Endpoint) { s.ep.Store(ep) }

// EndpointConfig is the Vapi endpoint's part of the configuration.
type EndpointConfig struct {
	MaxBodyBytes      int64
	AllowFrom         *allowlist.List
	PublicURL         string
	DeadlineWarnRatio float64
}

// Endpoint returns the Vapi endpoint: its limits, its verifier, and d to
// handle what passes.
func Endpoint(c EndpointConfig, verifier auth.Verifier, d *Dispatcher) *webhook.Endpoint {
	return &webhook.Endpoint{
		MaxBodyBytes:  c.MaxBodyBytes,
		AllowFrom:     c.AllowFrom,
		PublicURL:     c.PublicURL,
		Verifier:      verifier,
		Handle:        d.handleBody,
		Decode:        d.decode,
		HandleDecoded: d.handleDecoded,
		SlowRatio:     c.DeadlineWarnRatio,
		// EncodeError is nil: Vapi is answered in JSON.
	}
}

// handleBody decodes an authentic body and handles the message.
func (d *Dispatcher) handleBody(ctx context.Context, body []byte) (webhook.Reply, error) {
	dec, err := d.decode(body)
	if err != nil {
		return webhook.Reply{}, err
	}
	return d.handleDecoded(ctx, dec)
}

// decode reads an authentic body (webhook.Endpoint.Decode).
func (d *Dispatcher) decode(body []byte) (webhook.Decoded, error) {
	msg, err := vapi.Decode(body)
	if err != nil {
		// The decoder's message names the field, never its value.
		return webhook.Decoded{}, &webhook.Error{Status: http.StatusBadRequest, Msg: err.Error(), Type: "none"}
	}
	msg.Body = body
	return webhook.Decoded{Msg: msg, Subject: subjectOf(msg)}, nil
}

// subjectOf says what m is about, as Handle will treat it: which call,
// whether it is an event noted by track (with which statuses), and
// whether it has side effects.
func subjectOf(m *vapi.Message) replay.Subject {
	s := replay.Subject{CallID: m.CallID(), SideEffects: sideEffects(m.Type)}
	if s.CallID == "" || m.DryRun {
		return s
	}
	switch m.Type {
	case vapi.TypeEndOfCallReport, vapi.TypeCallDeleted, vapi.TypeCampaignPredial, vapi.TypePhoneCallControl,
		"chat.created", "chat.deleted", "session.created", "session.updated", "session.deleted":
		return s
	case vapi.TypeStatusUpdate:
		if m.Status == "" || m.Status == "ended" {
			return s
		}
		s.Status = m.Status
	}
	s.Observe = true
	if m.Call != nil {
		s.Initial = m.Call.Status
	}
	return s
}

// handleDecoded handles a decoded message (webhook.Endpoint.HandleDecoded).
func (d *Dispatcher) handleDecoded(ctx context.Context, dec webhook.Decoded) (webhook.Reply, error) {
	msg := dec.Msg.(*vapi.Message)
	out, err := d.Handle(ctx, msg)
	typ, id := vapi.MetricType(msg.Type), msg.CallID()
	if err != nil {
		if we := (*webhook.Error)(nil); errors.As(err, &we) {
			we.Type, we.CallID, we.Deadline = typ, id, Deadline(msg.Type, d.serverTimeout)
		}
		return out, err
	}
	out.Type, out.CallID, out.Deadline = typ, id, Deadline(msg.Type, d.serverTimeout)
	return out, nil
}
