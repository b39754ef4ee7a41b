// Package callcontrol is a client for Vapi's Live Call Control: it posts
// control messages (say, add-message, control, end-call, transfer) as JSON
// to a call's monitor.controlUrl.
//
// Threats it counters:
//   - The control URL is a capability: whoever holds it can speak in, mute,
//     transfer or end the call. It is never logged and never put in an error;
//     errors and logs name its host only.
//   - A control URL taken from a message could point anywhere (inside the
//     customer's network, to a look-alike domain): it must be https and its
//     host must match call_control.allowed_hosts, with a dot boundary
//     ("*.vapi.ai" matches neither "evilvapi.ai" nor "vapi.ai.evil.com");
//     no credentials in it, no proxy, no redirect followed.
//   - Message content can hold personal data: it is never logged.
//   - A retried "say" would be spoken twice: a message that is not
//     idempotent is retried only when the request cannot have reached Vapi
//     (or Vapi said it did not act: 429, 503).
package callcontrol

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
)

// Outcome labels a Send for metrics: a bounded set.
type Outcome string

// Send outcomes.
const (
	// OutcomeOK: Vapi answered 2xx.
	OutcomeOK Outcome = "ok"
	// OutcomeHTTPError: Vapi answered another status (a redirect included).
	OutcomeHTTPError Outcome = "http_error"
	// OutcomeTimeout: no answer within the attempt's timeout, or the
	// caller's context ended.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeUnreachable: the connection failed (DNS, refused, reset, TLS).
	OutcomeUnreachable Outcome = "unreachable"
	// OutcomeRefusedURL: the control URL failed CheckURL; nothing was sent.
	OutcomeRefusedURL Outcome = "refused_url"
	// OutcomeRateLimited: Vapi answered 429 on the last attempt, or asked
	// to wait longer than MaxRetryAfter.
	OutcomeRateLimited Outcome = "rate_limited"
)

// MaxRetryAfter caps how long a 429's Retry-After is honoured: a control
// message is about a live call, and one that waits longer is too late. A
// longer Retry-After ends the Send with OutcomeRateLimited.
const MaxRetryAfter = 2 * time.Second

const (
	// maxBodyBytes is the most of Vapi's answer read (and drained, so that
	// the connection is reused); the rest is dropped with the connection.
	maxBodyBytes = 64 << 10
	// excerptBytes is the most of Vapi's answer quoted in an error, taken
	// from its first headBytes (with the secrets replaced first).
	excerptBytes = 200
	headBytes    = 1024
	// logAttempts is the log key of a Send's attempts (internal/logkey has
	// none yet).
	logAttempts = "attempts"
)

// Deps are a Client's dependencies; every field is optional.
type Deps struct {
	// Log receives one line per failed Send (Warn) and per success and
	// retry (Debug): type, host, status, attempts, outcome, duration. Never
	// the URL's path, the content or the key. Default: discard.
	Log *slog.Logger
	// Observe is told about every Send that got as far as checking the
	// URL (metrics). outcome is one of the Outcome values.
	Observe func(msgType, outcome string, attempts int, d time.Duration)
	// Now is the clock for durations and Retry-After dates (default
	// time.Now).
	Now func() time.Time
	// Sleep waits d between attempts, or until ctx is done (then it returns
	// ctx's error). Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the backoff's jitter (default
	// math/rand/v2.Float64).
	Rand func() float64
}

// Client sends control messages. It is safe for concurrent use.
type Client struct {
	pats    []hostPattern
	key     string
	timeout time.Duration
	retries int
	backoff time.Duration
	http    *http.Client
	log     *slog.Logger
	observe func(string, string, int, time.Duration)
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	rand    func() float64
}

// New builds a client from a resolved configuration (its defaults are
// filled in a copy). It returns an error listing the configuration's
// problems when Validate finds any.
func New(cfg Config, deps Deps) (*Client, error) {
	cfg.Complete()
	if probs := cfg.Validate(); len(probs) > 0 {
		return nil, fmt.Errorf("call_control: %s", strings.Join(probs, "; "))
	}
	c := &Client{
		key:     string(cfg.BearerKey),
		timeout: cfg.Timeout.D(),
		retries: cfg.RetryCount(),
		backoff: cfg.Backoff.D(),
		log:     deps.Log,
		observe: deps.Observe,
		now:     deps.Now,
		sleep:   deps.Sleep,
		rand:    deps.Rand,
	}
	for _, h := range cfg.AllowedHosts {
		p, _ := parsePattern(h) // checked by Validate
		c.pats = append(c.pats, p)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.observe == nil {
		c.observe = func(string, string, int, time.Duration) {}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = periodic.Sleep
	}
	if c.rand == nil {
		c.rand = rand.Float64
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			// Vapi is reached directly: an environment proxy would see the
			// control URL and the key.
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   c.timeout,
			ResponseHeaderTimeout: 0, // bounded by the attempt's context
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// A redirect is an error, never followed: it would take the body
		// and the key to a host nobody checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// CheckURL checks a control URL before it is used or stored: an absolute
// https URL without credentials whose host (and port) matches
// allowed_hosts; http only for a loopback host listed exactly. The error
// wraps ErrURLRefused and names the host at most, never the URL.
func (c *Client) CheckURL(raw string) error {
	_, _, err := checkURL(raw, c.pats)
	return err
}

// Result is how a Send went.
type Result struct {
	// Type is the message's type.
	Type    string
	Outcome Outcome
	// Status is Vapi's last HTTP status, 0 when it never answered.
	Status int
	// Attempts is the number of requests made (0 when the URL was refused).
	Attempts int
	// Duration is the Send's time, retries and waits included.
	Duration time.Duration
}

// Error is a message Vapi did not accept or that could not be delivered.
// It names the control URL's host only.
type Error struct {
	// Type is the message's type.
	Type string
	// Host is the control URL's host[:port] ("" when the URL is unusable).
	Host     string
	Outcome  Outcome
	Status   int
	Attempts int
	// Excerpt (never logged, and not in Error(): Vapi may echo the
	// message's content) is the start of Vapi's answer (at most 200 bytes, one line,
	// control characters and the URL's path segments replaced), for an
	// http_error or rate_limited outcome.
	Excerpt string
	// Class says why there was no answer ("timeout", "connection refused").
	Class string
	// Uncertain: the request may have reached Vapi and been acted on (no
	// answer after it was written, or a proxy's 502/504). A message that is
	// not idempotent must not be sent again.
	Uncertain bool
	err       error
}

// Error describes the failure without the URL or the content.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("call control ")
	b.WriteString(e.Type)
	if e.Outcome == OutcomeRefusedURL {
		b.WriteString(" not sent: ")
		b.WriteString(e.err.Error())
		return b.String()
	}
	b.WriteString(" to ")
	b.WriteString(e.Host)
	switch e.Outcome {
	case OutcomeHTTPError:
		fmt.Fprintf(&b, ": status %d", e.Status)
	case OutcomeRateLimited:
		fmt.Fprintf(&b, ": rate limited (status %d)", e.Status)
	default:
		fmt.Fprintf(&b, ": %s", e.Outcome)
	}
	if e.Class != "" {
		fmt.Fprintf(&b, " (%s)", e.Class)
	}
	fmt.Fprintf(&b, " after %d attempt", e.Attempts)
	if e.Attempts != 1 {
		b.WriteString("s")
	}
	// Vapi's answer is not quoted: it may echo the message's content
	// (personal data), and errors are logged.
	return b.String()
}

// Unwrap returns the cause: ErrURLRefused, context.DeadlineExceeded,
// context.Canceled or the network error (which names an address, never
// the URL).
func (e *Error) Unwrap() error { return e.err }

// attempt is how one request went.
type attempt struct {
	outcome Outcome
	status  int
	class   string
	excerpt string
	// retry: the request may be sent again; wait is the delay Vapi asked
	// for (0: the backoff's).
	retry bool
	// uncertain: Vapi may have acted on it.
	uncertain bool
	wait      time.Duration
	err       error
}

// Send posts m to controlURL, retrying what is safe to retry at most
// Retries times, with a backoff doubled each time (plus jitter):
//   - a connection that failed before the request was sent (DNS, refused,
//     dial timeout): any message;
//   - 429 (after Retry-After, if at most MaxRetryAfter) and 503, by which
//     Vapi says it did not act: any message;
//   - a timeout, a connection lost after the request was written, 502 and
//     504 (a proxy's answer: Vapi may have acted): idempotent messages
//     only (control, end-call), never say, add-message or transfer.
//
// Other statuses are not retried; the error quotes the start of Vapi's
// answer. Each attempt is bounded by Timeout, and the whole by ctx: when
// ctx ends, no further attempt is made. A refused URL makes no request.
// Every error is an *Error, except for a zero Message (ErrInvalidMessage).
func (c *Client) Send(ctx context.Context, controlURL string, m Message) (Result, error) {
	start := c.now()
	res := Result{Type: m.typ}
	if m.body == nil {
		return res, fmt.Errorf("%w: zero Message", ErrInvalidMessage)
	}
	u, host, err := checkURL(controlURL, c.pats)
	if err != nil {
		res.Outcome = OutcomeRefusedURL
		res.Duration = c.now().Sub(start)
		c.observe(m.typ, string(res.Outcome), 0, res.Duration)
		c.log.Warn("call control URL refused", logkey.Type, m.typ, logkey.Addr, host, logkey.Outcome, string(res.Outcome), logkey.Reason, err.Error())
		return res, &Error{Type: m.typ, Host: host, Outcome: res.Outcome, err: err}
	}
	target := u.String()
	secrets := pathSecrets(u, c.key)
	var a attempt
	uncertain := false
	for {
		res.Attempts++
		a = c.attempt(ctx, target, m, secrets)
		uncertain = uncertain || a.uncertain
		res.Status = a.status
		if a.outcome == OutcomeOK || !a.retry || res.Attempts > c.retries || ctx.Err() != nil {
			break
		}
		d := a.wait
		if d == 0 {
			d = c.delay(res.Attempts)
		}
		c.log.Debug("call control retry", logkey.Type, m.typ, logkey.Addr, host, logkey.Outcome, string(a.outcome), logkey.Status, a.status, logkey.ErrClass, a.class, logkey.DelayMS, d.Milliseconds())
		if err := c.sleep(ctx, d); err != nil {
			// ctx ended: the last attempt's outcome stands.
			a.err = err
			if a.class != "" {
				a.class += ", then "
			}
			a.class += "cancelled while waiting to retry"
			break
		}
	}
	res.Outcome = a.outcome
	res.Duration = c.now().Sub(start)
	c.observe(m.typ, string(res.Outcome), res.Attempts, res.Duration)
	attrs := []any{logkey.Type, m.typ, logkey.Addr, host, logkey.Outcome, string(res.Outcome), logkey.Status, res.Status, logAttempts, res.Attempts, logkey.DurationMS, float64(res.Duration.Microseconds()) / 1000}
	if res.Outcome == OutcomeOK {
		c.log.Debug("call control sent", attrs...)
		return res, nil
	}
	if a.class != "" {
		attrs = append(attrs, logkey.ErrClass, a.class)
	}
	c.log.Warn("call control failed", attrs...)
	return res, &Error{Type: m.typ, Host: host, Outcome: a.outcome, Status: a.status, Attempts: res.Attempts, Excerpt: a.excerpt, Class: a.class, Uncertain: uncertain, err: a.err}
}

// delay is the wait before retry n (1-based): Backoff doubled n-1 times,
// between half of it and all of it (jitter spreads the retries of many
// calls that failed together).
func (c *Client) delay(n int) time.Duration {
	d := c.backoff << (n - 1)
	half := d / 2
	return half + time.Duration(c.rand()*float64(d-half))
}

func (c *Client) attempt(ctx context.Context, target string, m Message, secrets []string) attempt {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(m.body))
	if err != nil {
		// checkURL parsed it; this does not happen. The error quotes the URL.
		return attempt{outcome: OutcomeUnreachable, class: "request could not be built"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "voicegate")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.failed(ctx, actx, m, err)
	}
	defer resp.Body.Close()
	head := make([]byte, headBytes)
	n, _ := io.ReadFull(resp.Body, head)
	full := n < headBytes
	// Drain (bounded) so that the connection can be reused; a body read
	// error after the status changes nothing: Vapi has answered.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes-int64(n)))
	a := attempt{status: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		a.outcome = OutcomeOK
		return a
	case s == http.StatusTooManyRequests:
		a.outcome, a.retry = OutcomeRateLimited, true
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			if ra > MaxRetryAfter {
				a.retry, a.class = false, "Retry-After "+ra.Round(time.Second).String()+" is over "+MaxRetryAfter.String()
			}
			a.wait = ra
		}
	case s == http.StatusServiceUnavailable:
		a.outcome, a.retry = OutcomeHTTPError, true
	case s == http.StatusBadGateway || s == http.StatusGatewayTimeout:
		a.outcome, a.retry, a.uncertain = OutcomeHTTPError, m.idempotent, true
	case s >= 300 && s <= 399:
		a.outcome, a.class = OutcomeHTTPError, "redirect not followed"
		return a // its Location and body are not quoted
	default:
		a.outcome = OutcomeHTTPError
	}
	a.excerpt = excerpt(head[:n], full, secrets)
	return a
}

// failed classifies a request that got no answer.
func (c *Client) failed(ctx, actx context.Context, m Message, err error) attempt {
	// The *url.Error quotes the URL: keep only what it wraps.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	a := attempt{outcome: OutcomeUnreachable, class: errorClass(err), err: err}
	switch {
	case ctx.Err() != nil:
		// The caller gave up (the call ended, the webhook's deadline):
		// nothing more is sent.
		a.outcome, a.err = OutcomeTimeout, ctx.Err()
		a.class = "cancelled"
		if errors.Is(a.err, context.DeadlineExceeded) {
			a.class = "deadline exceeded"
		}
	case notSent(err):
		// Vapi never saw the request: retrying cannot repeat an action.
		a.retry = !permanent(err)
		if actx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			a.outcome, a.class = OutcomeTimeout, "connect timeout"
		}
	case actx.Err() != nil:
		a.outcome, a.retry, a.uncertain = OutcomeTimeout, m.idempotent, true
		a.class, a.err = "no answer within "+c.timeout.String(), context.DeadlineExceeded
	default:
		// Lost after (perhaps) being written: Vapi may have acted.
		a.retry, a.uncertain = m.idempotent && !permanent(err), true
	}
	return a
}

// notSent reports whether a transport error happened before any byte of
// the request was written: resolving or connecting failed.
func notSent(err error) bool {
	var oe *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) || (errors.As(err, &oe) && oe.Op == "dial") || errors.Is(err, syscall.ECONNREFUSED)
}

// permanent reports whether retrying err cannot help: the server's
// certificate is not trusted or it does not speak TLS.
func permanent(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &recErr)
}

// errorClass names why a request failed, for logs and errors: a fixed
// phrase, never the error's text.
func errorClass(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case permanent(err):
		return "TLS failed (certificate not trusted, or not a TLS server)"
	}
	return "request failed"
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > 86400 {
			s = 86400
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// pathSecrets are the strings an excerpt of Vapi's answer must not quote:
// the control URL's path segments long enough to identify the call (its
// id) and the key, if Vapi echoes them.
func pathSecrets(u *url.URL, key string) []string {
	var s []string
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 {
			s = append(s, seg)
		}
	}
	if key != "" {
		s = append(s, key)
	}
	return s
}

// excerpt makes the start of Vapi's answer safe to put in an error: valid
// UTF-8 on one line, without control characters or the secrets, at most
// excerptBytes long. head is at most headBytes of the answer; full says
// whether it is the whole answer.
func excerpt(head []byte, full bool, secrets []string) string {
	s := strings.ToValidUTF8(string(head), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	s = strings.Join(strings.Fields(s), " ")
	cut := len(s) > excerptBytes
	s = truncate(s, excerptBytes)
	if !full && !cut {
		// The answer was cut inside a secret perhaps: drop an ending that
		// begins one.
		for _, sec := range secrets {
			for n := min(len(sec)-1, len(s)); n >= 4; n-- {
				if strings.HasSuffix(s, sec[:n]) {
					s = s[:len(s)-n]
					break
				}
			}
		}
	}
	return s
}
