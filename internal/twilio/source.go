package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/webhook"
)

// Source is one Twilio route as the gateway serves it: the voice webhook
// or the status callback (internal/webhook).
type Source struct {
	name, path string
	types      []string
	ep         atomic.Pointer[webhook.Endpoint]
}

var _ webhook.Source = (*Source)(nil)

// Name implements webhook.Source: "twilio-voice" or "twilio-status".
func (s *Source) Name() string { return s.name }

// Path implements webhook.Source.
func (s *Source) Path() string { return s.path }

// Types implements webhook.Source.
func (s *Source) Types() []string { return s.types }

// Endpoint implements webhook.Source.
func (s *Source) Endpoint() *webhook.Endpoint { return s.ep.Load() }

// Swap makes ep the endpoint of every request that starts from now on.
func (s *Source) Swap(ep *webhook.Endpoint) { s.ep.Store(ep) }

// Sources are the two Twilio routes.
type Sources struct {
	Voice, Status *Source
}

// List returns the sources for the gateway.
func (s Sources) List() []webhook.Source { return []webhook.Source{s.Voice, s.Status} }

// Swap installs endpoints built from a new configuration.
func (s Sources) Swap(voice, status *webhook.Endpoint) { s.Voice.Swap(voice); s.Status.Swap(status) }

// Deps are what the Twilio handlers work with.
type Deps struct {
	Store   calls.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
	// TrustedProxies may tell the public URL (X-Forwarded-Proto and
	// X-Forwarded-Host) when public_base_url is not set.
	TrustedProxies []netip.Prefix
}

// TwiMLDeadline is how long Twilio waits for a webhook's answer.
const TwiMLDeadline = 15 * time.Second

// NewSources returns the two routes answering with endpoints built from c
// (validated: Validate returned no problem).
func NewSources(c Config, d Deps) (Sources, error) {
	s := Sources{
		Voice:  &Source{name: "twilio-voice", path: c.VoicePath, types: []string{"voice", "none"}},
		Status: &Source{name: "twilio-status", path: c.StatusPath, types: []string{"status", "none"}},
	}
	voice, status, err := Endpoints(c, d)
	if err != nil {
		return Sources{}, err
	}
	s.Swap(voice, status)
	return s, nil
}

// Endpoints builds the two routes' endpoints (what a reload replaces).
func Endpoints(c Config, d Deps) (voice, status *webhook.Endpoint, err error) {
	for n, a := range c.Numbers {
		if a.Hours != nil && a.Hours.loc == nil {
			if err := a.Hours.compile(); err != nil {
				return nil, nil, fmt.Errorf("twilio.numbers.%s.hours: %w", n, err)
			}
		}
	}
	v, err := newVerifier(c, d.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	allow, err := c.AllowFrom.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("twilio.%w", err)
	}
	h := &handler{cfg: c, d: d, known: map[string]string{}}
	voice = &webhook.Endpoint{MaxBodyBytes: c.MaxBodyBytes, AllowFrom: allow, Verifier: v,
		Handle: h.voice, SlowRatio: 0.5, AuthFailureStatus: http.StatusForbidden,
		EncodeError: func(int, string) (string, []byte) {
			// Twilio plays its own message for an error status; the body
			// says the same, in case a fallback ever reads it.
			return "text/xml", sayAndHangUp(c.ErrorMessage, c.Voice, c.Language)
		}}
	status = &webhook.Endpoint{MaxBodyBytes: c.MaxBodyBytes, AllowFrom: allow, Verifier: v,
		Handle: h.status, SlowRatio: 0.5, AuthFailureStatus: http.StatusForbidden}
	return voice, status, nil
}

// IdempotencyHeader is the header Twilio's retries of one request share.
// It is not the replay key: the endpoints leave ReplayKey nil, so a retry
// is recognised by its body, which the signature covers. Keyed on the
// unsigned token, anyone holding an auth token could send another
// request's token to be answered with that request's cached answer, or a
// fresh one to have a captured request handled again.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

// verifier adapts Verifier to the gateway's auth.Verifier: the public URL
// rebuilt, the form read, each token's not_after applied.
type verifier struct {
	v        *Verifier
	notAfter []time.Time
	account  []string // the account each token is bound to ("": any)
	base     string
	trusted  []netip.Prefix
}

func newVerifier(c Config, trusted []netip.Prefix) (*verifier, error) {
	tokens := make([]string, len(c.AuthTokens))
	notAfter := make([]time.Time, len(c.AuthTokens))
	account := make([]string, len(c.AuthTokens))
	for i, t := range c.AuthTokens {
		tokens[i], notAfter[i], account[i] = t.Value, t.NotAfter, t.AccountSid
	}
	v, err := NewVerifier(tokens)
	if err != nil {
		return nil, err
	}
	return &verifier{v: v, notAfter: notAfter, account: account, base: c.PublicBaseURL, trusted: trusted}, nil
}

const mode = "twilio"

// Verify implements auth.Verifier.
func (a *verifier) Verify(r *auth.Request, now time.Time) error {
	sigs := r.Header.Values(SignatureHeader)
	switch {
	case len(sigs) == 0 || sigs[0] == "":
		return &auth.Error{Reason: auth.ReasonMissing, Mode: mode}
	case len(sigs) > 1:
		return &auth.Error{Reason: auth.ReasonMalformed, Mode: mode}
	}
	u, ok := a.publicURL(r.HTTP)
	if !ok {
		return &auth.Error{Reason: auth.ReasonMalformed, Mode: mode}
	}
	req := Request{URL: u, Body: r.Body, Signature: sigs[0]}
	var vals url.Values
	if _, isJSON := BodySHA256(u); !isJSON {
		// The handlers read the body as a form, whatever its type: so the
		// signature must cover it as one. A body of another type (a
		// signature over the URL alone would cover none of it) is refused.
		if !isForm(r.Header) && len(r.Body) > 0 {
			return &auth.Error{Reason: auth.ReasonMalformed, Mode: mode}
		}
		var err error
		if vals, err = url.ParseQuery(string(r.Body)); err != nil {
			return &auth.Error{Reason: auth.ReasonMalformed, Mode: mode}
		}
		req.Params = AppendValues(nil, vals)
	}
	i, err := a.v.Verify(&req)
	switch {
	case errors.Is(err, ErrMissingSignature):
		return &auth.Error{Reason: auth.ReasonMissing, Mode: mode}
	case errors.Is(err, ErrMalformedSignature):
		return &auth.Error{Reason: auth.ReasonMalformed, Mode: mode}
	case err != nil:
		return &auth.Error{Reason: auth.ReasonMismatch, Mode: mode}
	case !a.notAfter[i].IsZero() && !now.Before(a.notAfter[i]):
		return &auth.Error{Reason: auth.ReasonExpired, Mode: mode}
	case a.account[i] != "" && (len(vals["AccountSid"]) != 1 || vals.Get("AccountSid") != a.account[i]):
		// Signed by a token bound to another account (a sub-account's
		// token acting on the parent's calls).
		return &auth.Error{Reason: auth.ReasonMismatch, Mode: mode}
	}
	return nil
}

func isForm(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// publicURL is the URL Twilio requested: public_base_url plus the raw
// request URI; without a base URL, from a trusted proxy's X-Forwarded-Proto
// and X-Forwarded-Host (first values) — never from anyone else's headers.
func (a *verifier) publicURL(r *http.Request) (string, bool) {
	if r == nil || !strings.HasPrefix(r.RequestURI, "/") {
		return "", false
	}
	if a.base != "" {
		return a.base + r.RequestURI, true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !a.isTrusted(ap.Addr().Unmap()) {
		return "", false
	}
	proto := first(r.Header.Get("X-Forwarded-Proto"))
	host := first(r.Header.Get("X-Forwarded-Host"))
	if host == "" {
		host = r.Host
	}
	if (proto != "https" && proto != "http") || host == "" || strings.ContainsAny(host, "/?#@ \\") {
		return "", false
	}
	return proto + "://" + host + r.RequestURI, true
}

func (a *verifier) isTrusted(addr netip.Addr) bool {
	for _, p := range a.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func first(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// handler answers the two routes.
type handler struct {
	cfg Config
	d   Deps
	// known remembers the calls this process has checked or created, and
	// their account: a call's later webhooks then skip the store's read.
	// Bounded: cleared when it reaches maxKnown.
	mu    sync.Mutex
	known map[string]string
}

// maxKnown bounds handler.known (about 100 bytes a call).
const maxKnown = 100_000

// voice answers an incoming call with TwiML, always: a caller never hears
// silence, and never gets an error status that makes Twilio play its own
// message. What cannot be done (a store failure) ends the call with the
// configured error message, logged and counted.
func (h *handler) voice(ctx context.Context, body []byte) (webhook.Reply, error) {
	reply := webhook.Reply{Status: http.StatusOK, ContentType: "text/xml", Type: "voice", Deadline: TwiMLDeadline}
	vals, err := url.ParseQuery(string(body))
	callSid := vals.Get("CallSid")
	if err != nil || callSid == "" {
		// The parser's error quotes the body: not logged.
		why := "no CallSid"
		if err != nil {
			why = "not a form"
		}
		h.d.Log.Warn("twilio voice webhook without a call: answered with the error message", logkey.Reason, why)
		reply.Body = sayAndHangUp(h.cfg.ErrorMessage, h.cfg.Voice, h.cfg.Language)
		return reply, nil
	}
	reply.CallID = callSid
	v := callValues{CallSid: callSid, AccountSid: vals.Get("AccountSid"), From: vals.Get("From"), To: vals.Get("To")}
	a, known := h.cfg.Numbers[v.To]
	label := "unknown_number"
	switch {
	case !known:
		reply.Body = sayAndHangUp(h.cfg.UnknownNumber, h.cfg.Voice, h.cfg.Language)
	case !a.Hours.OpenAt(h.d.Now()):
		label = "closed"
		reply.Body = sayAndHangUp(a.ClosedMessage, h.cfg.Voice, h.cfg.Language)
	case a.Sip != nil:
		label = "sip"
		reply.Body = dialSip(a.Sip, v)
	case a.Stream != nil:
		label = "stream"
		reply.Body = connectStream(a.Stream, v)
	default:
		label = "say"
		reply.Body = sayAndHangUp(a.Say, h.cfg.Voice, h.cfg.Language)
	}
	// The call and its first status, before the answer; the caller's
	// number is not stored (metadata only, as for Vapi). A call already
	// stored as another account's (or Vapi's) is not answered for.
	now := h.d.Now()
	rec := calls.Record{ID: callSid, OrgID: v.AccountSid, Type: "twilio:" + vals.Get("Direction"), AssistantID: "twilio:" + label, Status: vals.Get("CallStatus"), CreatedAt: now}
	if err := h.ensureCall(ctx, rec); errors.Is(err, errOtherAccount) {
		h.d.Log.Warn("twilio call refused: stored as another account's", logkey.CallID, callSid)
		reply.Body = sayAndHangUp(h.cfg.ErrorMessage, h.cfg.Voice, h.cfg.Language)
		return reply, nil
	} else if err != nil {
		return h.storeFailed(reply, callSid, err), nil
	}
	if st := vals.Get("CallStatus"); st != "" {
		if err := h.d.Store.RecordStatus(ctx, callSid, calls.StatusChange{Status: st, At: now}); err != nil {
			h.d.Metrics.StoreErrors.WithLabelValues("record_status").Inc()
			return h.storeFailed(reply, callSid, err), nil
		}
	}
	h.d.Log.Info("twilio call answered", logkey.CallID, callSid, logkey.Rule, label)
	return reply, nil
}

// storeFailed ends the call with the error message: its record could not
// be kept.
func (h *handler) storeFailed(reply webhook.Reply, callSid string, err error) webhook.Reply {
	h.d.Log.Error("twilio call not recorded: answered with the error message", logkey.CallID, callSid, logkey.Err, err)
	reply.Body = sayAndHangUp(h.cfg.ErrorMessage, h.cfg.Voice, h.cfg.Language)
	return reply
}

// errOtherAccount is a request for a call stored as another account's (or
// another provider's): a token bound to one account must not touch it.
var errOtherAccount = errors.New("the call belongs to another account")

// ensureCall makes sure call rec.ID is recorded as account rec.OrgID's
// Twilio call: a call not stored yet is created — the only write, so a
// call's later webhooks cost a read instead — and one stored as another
// account's (or as a Vapi call) is errOtherAccount. A store failure is
// counted here.
func (h *handler) ensureCall(ctx context.Context, rec calls.Record) error {
	h.mu.Lock()
	account, ok := h.known[rec.ID]
	h.mu.Unlock()
	switch {
	case ok && account == rec.OrgID:
		return nil
	case ok:
		return errOtherAccount
	}
	if err := h.checkOrCreate(ctx, rec); err != nil {
		return err
	}
	h.mu.Lock()
	if len(h.known) >= maxKnown {
		clear(h.known)
	}
	h.known[rec.ID] = rec.OrgID
	h.mu.Unlock()
	return nil
}

// checkOrCreate is ensureCall's look at the store.
func (h *handler) checkOrCreate(ctx context.Context, rec calls.Record) error {
	stored, _, err := h.d.Store.Call(ctx, rec.ID)
	switch {
	case errors.Is(err, calls.ErrNotFound):
		if err := h.d.Store.CreateCall(ctx, rec); err != nil {
			h.d.Metrics.StoreErrors.WithLabelValues("create_call").Inc()
			return err
		}
	case err != nil:
		h.d.Metrics.StoreErrors.WithLabelValues("read_call").Inc()
		return err
	case stored.OrgID != rec.OrgID || !strings.HasPrefix(stored.Type, "twilio:"):
		return errOtherAccount
	}
	return nil
}

// terminal are the statuses a Twilio call ends with.
var terminal = map[string]bool{"completed": true, "busy": true, "failed": true, "no-answer": true, "canceled": true}

// status applies a status callback to the call's record and timeline, as a
// Vapi status update is: a status change, and for a final status the end
// of the call with its duration. What cannot be stored is answered 503, so
// that it is not lost silently.
func (h *handler) status(ctx context.Context, body []byte) (webhook.Reply, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusBadRequest, Msg: "not a form", Type: "none", Err: errors.New("the body does not parse as a form")}
	}
	callSid, st := vals.Get("CallSid"), vals.Get("CallStatus")
	if callSid == "" || st == "" {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusBadRequest, Msg: "CallSid and CallStatus are required", Type: "status"}
	}
	// Twilio's Timestamp has one-second resolution: a callback of the
	// last two seconds is stamped with the receive time (so that it
	// sorts after the call's start, stamped the same way); an older one —
	// delivered late — keeps its own time.
	at := h.d.Now()
	if t, err := time.Parse(time.RFC1123Z, vals.Get("Timestamp")); err == nil && t.Year() >= 2000 && t.Year() < 2200 && at.Sub(t) > 2*time.Second {
		at = t
	}
	fail := func(err error) (webhook.Reply, error) {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusServiceUnavailable, Msg: "could not store the status, retry", Type: "status", CallID: callSid, Err: err}
	}
	rec := calls.Record{ID: callSid, OrgID: vals.Get("AccountSid"), Type: "twilio:" + vals.Get("Direction"), Status: st, CreatedAt: at}
	if err := h.ensureCall(ctx, rec); errors.Is(err, errOtherAccount) {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusForbidden, Msg: err.Error(), Type: "status", CallID: callSid}
	} else if err != nil {
		return fail(err)
	}
	if err := h.d.Store.RecordStatus(ctx, callSid, calls.StatusChange{Status: st, At: at}); err != nil {
		h.d.Metrics.StoreErrors.WithLabelValues("record_status").Inc()
		return fail(err)
	}
	if terminal[st] {
		e := calls.End{Reason: st, At: at}
		if d, err := strconv.ParseFloat(vals.Get("CallDuration"), 64); err == nil && d >= 0 {
			e.Duration = &d
		}
		if err := h.d.Store.EndCall(ctx, callSid, e); err != nil {
			h.d.Metrics.StoreErrors.WithLabelValues("end_call").Inc()
			return fail(err)
		}
	}
	return webhook.Reply{Status: http.StatusNoContent, ContentType: "text/plain", Type: "status", CallID: callSid, Deadline: TwiMLDeadline}, nil
}
