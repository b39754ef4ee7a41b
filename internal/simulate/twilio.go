package simulate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voicegate/voicegate/internal/twilio"
)

// Twilio is the Twilio door the twilio scenarios play against. Requests go
// to Options.URL plus the section's paths, and are signed for
// PublicBaseURL plus the same paths: the URL Twilio is configured with,
// which a TLS-terminating proxy in front of voicegate turns into
// voicegate's own address. That is what the scenarios do too, so they
// test the signature over the public URL whatever address they reach the
// server on.
type Twilio struct {
	// Config is the server's twilio section: the paths, public_base_url,
	// and what each number is answered with.
	Config twilio.Config
	// Token is the auth token the requests are signed with (one of
	// Config.AuthTokens).
	Token string
	// Number is the called number (To). A number not in Config.Numbers is
	// expected to hear unknown_number_message.
	Number string
}

// IsTwilio reports whether scenario plays against the Twilio door.
func IsTwilio(scenario string) bool { return strings.HasPrefix(scenario, "twilio") }

// TwilioStores reports whether a Twilio scenario stores a call: the
// Twilio door has no dry run, so such a scenario needs Options.Effects.
// twilio-security stores nothing (its one accepted request has no
// CallSid, and every other one is refused).
func TwilioStores(scenario string) bool { return scenario == "twilio-call" || scenario == "twilio" }

// runTwilio plays a twilio scenario.
func runTwilio(ctx context.Context, o Options, out io.Writer) ([]Step, error) {
	if !slices.Contains(Scenarios, o.Scenario) {
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", o.Scenario, strings.Join(Scenarios, ", "))
	}
	tw := o.Twilio
	if tw == nil {
		return nil, errors.New("the twilio scenarios need the server's twilio section (--config)")
	}
	if TwilioStores(o.Scenario) && !o.Effects {
		return nil, errors.New("the Twilio door has no dry run: this scenario stores a call, so it needs --effects (twilio-security stores nothing)")
	}
	// Validation compiles the numbers' opening hours, which the expected
	// answer reads.
	cfg := tw.Config
	if probs := cfg.Validate(true); len(probs) > 0 {
		return nil, fmt.Errorf("twilio section: %s", strings.Join(probs, "; "))
	}
	if cfg.PublicBaseURL == "" || tw.Token == "" || tw.Number == "" {
		return nil, errors.New("the twilio scenarios need public_base_url, an auth token and a number to call")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	base := strings.TrimSuffix(o.URL, "/")
	p := &player{o: o, out: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
	tp := &twilioPlayer{player: p, cfg: cfg, token: tw.Token, number: tw.Number, base: base}
	fmt.Fprintf(out, "twilio: requests go to %s (%s, %s), signed for %s (twilio.public_base_url): as Twilio signs them and a TLS-terminating proxy in front of voicegate forwards them\n",
		base, cfg.VoicePath, cfg.StatusPath, cfg.PublicBaseURL)
	tp.callSid = "CA" + randomHex(16)
	if TwilioStores(o.Scenario) {
		fmt.Fprintf(out, "effects: the call %s to %s is stored (the Twilio door has no dry run)\n", tp.callSid, tw.Number)
	} else {
		fmt.Fprintf(out, "nothing is stored: the signed request has no CallSid, and the tampered ones are refused before anything is done\n")
	}
	fmt.Fprintf(p.out, "STEP\tSTATUS\tWANT\tLATENCY\tNOTE\n")
	switch o.Scenario {
	case "twilio-call":
		tp.call(ctx)
	case "twilio-security":
		tp.security(ctx)
	default:
		tp.call(ctx)
		tp.security(ctx)
	}
	return p.finish(out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// twilioPlayer plays Twilio's part: form POSTs signed for the public URL.
type twilioPlayer struct {
	*player
	cfg           twilio.Config
	token, number string
	// base is where the requests go (the server's own address).
	base    string
	callSid string
	seq     int
}

// caller is the number the simulated calls come from (a 555-01xx number,
// reserved for fiction).
const caller = "+15550100001"

// accountSid stands for the Twilio account in the simulated requests.
const accountSid = "AC00000000000000000000000000000000"

// incomingCall is the form of Twilio's "A call comes in" webhook.
func (t *twilioPlayer) incomingCall(callSid string) url.Values {
	v := url.Values{"AccountSid": {accountSid}, "ApiVersion": {"2010-04-01"}, "CallStatus": {"ringing"}, "Direction": {"inbound"},
		"From": {caller}, "Caller": {caller}, "CallerCountry": {"US"}, "To": {t.number}, "Called": {t.number}, "CalledCountry": {"US"}}
	if callSid != "" {
		v.Set("CallSid", callSid)
	}
	return v
}

// statusCallback is the form of a call status callback.
func (t *twilioPlayer) statusCallback(status string, duration int) url.Values {
	t.seq++
	v := url.Values{"AccountSid": {accountSid}, "ApiVersion": {"2010-04-01"}, "CallSid": {t.callSid}, "CallStatus": {status},
		"Direction": {"inbound"}, "From": {caller}, "Caller": {caller}, "To": {t.number}, "Called": {t.number},
		"CallbackSource": {"call-progress-events"}, "SequenceNumber": {fmt.Sprint(t.seq - 1)},
		"Timestamp": {t.o.Now().UTC().Format(time.RFC1123Z)}}
	if duration >= 0 {
		v.Set("CallDuration", fmt.Sprint(duration))
		v.Set("Duration", fmt.Sprint((duration+59)/60))
	}
	return v
}

// sign is X-Twilio-Signature over rawURL and form, with token.
func sign(token, rawURL string, form url.Values) string {
	return twilio.Sign(token, twilio.Canonical(rawURL, twilio.AppendValues(nil, form)))
}

// post sends form to path, signed as Twilio signs it for the public URL,
// with idem as its idempotency token; tamper, if set, changes the request
// after signing.
func (t *twilioPlayer) post(ctx context.Context, name, path string, form url.Values, idem string, want int, tamper func(*http.Request), chk check) []byte {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.record(Step{Name: name, Want: want, Err: err, Note: err.Error()})
		return nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, sign(t.token, t.cfg.PublicBaseURL+path, form))
	req.Header.Set(twilio.IdempotencyHeader, idem)
	if tamper != nil {
		tamper(req)
	}
	return t.do(name, req, want, chk)
}

// setBody replaces a request's body with form, leaving its signature.
func setBody(r *http.Request, form url.Values) {
	b := form.Encode()
	r.Body = io.NopCloser(strings.NewReader(b))
	r.ContentLength = int64(len(b))
}

func newIdempotencyToken() string { return accountSid + "-" + newID() }

// call: an incoming call, answered with the TwiML configured for the
// number; Twilio's retry of it; status callbacks to completed; the retry
// of the last one.
func (t *twilioPlayer) call(ctx context.Context) {
	want := t.expected()
	idem := newIdempotencyToken()
	form := t.incomingCall(t.callSid)
	first := t.post(ctx, "incoming call to "+t.number, t.cfg.VoicePath, form, idem, http.StatusOK, nil, want.check)
	t.post(ctx, "incoming call retried (same idempotency token)", t.cfg.VoicePath, form, idem, http.StatusOK, nil, func(b []byte) (string, error) {
		if string(b) != string(first) {
			return "", fmt.Errorf("the retry was answered differently: %.80s", b)
		}
		return "answered the same", nil
	})
	noContent := func(b []byte) (string, error) {
		if len(b) != 0 {
			return "", fmt.Errorf("want no body, got %.80s", b)
		}
		return "", nil
	}
	t.post(ctx, "status in-progress", t.cfg.StatusPath, t.statusCallback("in-progress", -1), newIdempotencyToken(), http.StatusNoContent, nil, noContent)
	completed := t.statusCallback("completed", 73)
	idem = newIdempotencyToken()
	t.post(ctx, "status completed", t.cfg.StatusPath, completed, idem, http.StatusNoContent, nil, noContent)
	t.post(ctx, "status completed retried (same idempotency token)", t.cfg.StatusPath, completed, idem, http.StatusNoContent, nil, noContent)
}

// security: a signed request that stores nothing (no CallSid), then each
// way a forged or altered request could look, every one refused (403)
// before anything is done.
func (t *twilioPlayer) security(ctx context.Context) {
	voice, public := t.cfg.VoicePath, t.cfg.PublicBaseURL+t.cfg.VoicePath
	t.post(ctx, "signed, without CallSid", voice, t.incomingCall(""), newIdempotencyToken(), http.StatusOK, nil, func(b []byte) (string, error) {
		d, err := twilio.ReadTwiML(b)
		if err != nil {
			return "", err
		}
		if len(d.Say) != 1 || d.Say[0] != t.cfg.ErrorMessage || d.Hangup == nil {
			return "", fmt.Errorf("want error_message then <Hangup>, got %.80s", b)
		}
		return "authenticated; answered with error_message, nothing stored", nil
	})
	refused := http.StatusForbidden
	// Each refused request is a complete incoming call of its own: were it
	// accepted, it would be stored.
	call := func() url.Values { return t.incomingCall("CA" + randomHex(16)) }
	t.post(ctx, "unsigned", voice, call(), newIdempotencyToken(), refused, func(r *http.Request) { r.Header.Del(twilio.SignatureHeader) }, nil)
	form := call()
	t.post(ctx, "wrong auth token", voice, form, newIdempotencyToken(), refused, func(r *http.Request) {
		r.Header.Set(twilio.SignatureHeader, sign("not-the-auth-token-"+randomHex(8), public, form))
	}, nil)
	form = call()
	t.post(ctx, "parameter changed after signing (To)", voice, form, newIdempotencyToken(), refused, func(r *http.Request) {
		changed := cloneValues(form)
		changed.Set("To", "+15550100002")
		setBody(r, changed)
	}, nil)
	form = call()
	t.post(ctx, "parameter added after signing (Digits)", voice, form, newIdempotencyToken(), refused, func(r *http.Request) {
		added := cloneValues(form)
		added.Set("Digits", "1234")
		setBody(r, added)
	}, nil)
	internal := t.base + voice
	if slices.Contains(twilio.URLVariants(public), internal) {
		fmt.Fprintf(t.out, "signed over the internal URL\t-\t-\t-\tskipped: --url is the public URL\n")
	} else {
		form = call()
		t.post(ctx, "signed over the internal URL", voice, form, newIdempotencyToken(), refused, func(r *http.Request) {
			r.Header.Set(twilio.SignatureHeader, sign(t.token, internal, form))
		}, nil)
	}
	t.post(ctx, "two signature headers", voice, call(), newIdempotencyToken(), refused, func(r *http.Request) {
		r.Header.Add(twilio.SignatureHeader, r.Header.Get(twilio.SignatureHeader))
	}, nil)
	t.post(ctx, "status callback unsigned", t.cfg.StatusPath, t.statusCallback("completed", 1), newIdempotencyToken(), refused, func(r *http.Request) {
		r.Header.Del(twilio.SignatureHeader)
	}, nil)
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// answer is what the called number must be answered with.
type answer struct {
	kind              string // sip, stream, say, closed, unknown number
	sip, stream, text string
	errorMessage      string
}

// expected is the answer the configuration gives the number now.
func (t *twilioPlayer) expected() answer {
	w := answer{errorMessage: t.cfg.ErrorMessage}
	a, ok := t.cfg.Numbers[t.number]
	switch {
	case !ok:
		w.kind, w.text = "unknown number", t.cfg.UnknownNumber
	case !a.Hours.OpenAt(t.o.Now()):
		w.kind, w.text = "closed", a.ClosedMessage
	case a.Sip != nil:
		w.kind, w.sip = "sip", a.Sip.URI
	case a.Stream != nil:
		w.kind, w.stream = "stream", a.Stream.URL
	default:
		w.kind, w.text = "say", a.Say
	}
	return w
}

// check reads an answer to the incoming call: TwiML of the expected kind.
func (w answer) check(b []byte) (string, error) {
	d, err := twilio.ReadTwiML(b)
	if err != nil {
		return "", err
	}
	if len(d.Say) == 1 && d.Say[0] == w.errorMessage && w.text != w.errorMessage {
		return "", errors.New("answered with error_message: the server could not take the call (see its log)")
	}
	switch w.kind {
	case "sip":
		if d.Dial == nil || (d.Dial.Sip != w.sip && !strings.HasPrefix(d.Dial.Sip, w.sip+"?")) {
			return "", fmt.Errorf("want <Dial><Sip>%s, got %.80s", w.sip, b)
		}
		return "answered <Dial><Sip>" + truncate(d.Dial.Sip, 60), nil
	case "stream":
		if d.Connect == nil || d.Connect.Stream.URL != w.stream {
			return "", fmt.Errorf("want <Connect><Stream url=%q>, got %.80s", w.stream, b)
		}
		return "answered <Connect><Stream> " + w.stream, nil
	default:
		if len(d.Say) != 1 || d.Say[0] != w.text || d.Hangup == nil {
			return "", fmt.Errorf("want the %s message then <Hangup>, got %.80s", w.kind, b)
		}
		return "answered <Say> (" + w.kind + ") and <Hangup>", nil
	}
}
