// Package vapiapi is a small client of Vapi's management API
// (https://api.vapi.ai): assistants, tools, phone numbers, squads,
// structured outputs and webhook credentials — list (every page), get,
// create, update, delete — with timeouts, retries that honour Retry-After,
// and errors that carry Vapi's own message. Resources are kept as decoded
// JSON (Resource), so fields voicegate does not model survive a
// read-modify-write (Modify), nested ones included.
//
// Only the configured base URL is ever called: redirects are not followed,
// and a resource id cannot leave its path. The private key is sent in the
// Authorization header and appears in no error, log line or output.
package vapiapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
)

// PageLimit is the most items Vapi returns for one list request.
const PageLimit = 100

// Bounds of the client.
const (
	// maxBody caps an answer (a page of 100 assistants with long prompts
	// is a few MiB).
	maxBody = 32 << 20
	// maxPages bounds a List: 100,000 resources of a kind.
	maxPages = 1000
	// MaxRetryAfter caps the wait a Retry-After may ask for.
	MaxRetryAfter = 60 * time.Second
	// backoffBase is the wait before the first retry without Retry-After,
	// doubled before each later one (with jitter), up to backoffMax.
	backoffBase = 250 * time.Millisecond
	backoffMax  = 8 * time.Second
	// maxMessage caps Vapi's message in an error.
	maxMessage = 300
)

// Options are a client's dependencies; the zero value is production's.
type Options struct {
	// HTTP sends the requests (nil: a client that uses the environment's
	// proxy settings, HTTPS_PROXY, and never follows a redirect).
	HTTP *http.Client
	// Sleep waits d or until ctx ends (nil: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1) that spreads retries (nil:
	// math/rand/v2).
	Jitter func() float64
	// Now is the clock a Retry-After date is read against (nil: time.Now).
	Now func() time.Time
	// Log records retries (status and wait, never a body or the key);
	// nil: nothing is logged.
	Log *slog.Logger
}

// Client calls Vapi's management API.
type Client struct {
	base    string
	key     string
	timeout time.Duration
	retries int
	http    *http.Client
	sleep   func(context.Context, time.Duration) error
	jitter  func() float64
	now     func() time.Time
	log     *slog.Logger
}

// New returns the client of a completed, resolved and valid configuration
// with a key.
func New(c Config, o Options) (*Client, error) {
	if probs := c.Validate(); len(probs) > 0 {
		return nil, fmt.Errorf("vapi.api: %s", strings.Join(probs, "; "))
	}
	if c.Key == "" {
		return nil, errors.New("vapi.api.key is not set: voicegate needs Vapi's private API key (key: ${VAPI_API_KEY}, or key_file)")
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true},
		}
	}
	hc := *o.HTTP
	// Only the base URL is called: a redirect is an answer, not a hop.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if o.Sleep == nil {
		o.Sleep = periodic.Sleep
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: strings.TrimRight(c.BaseURL, "/"), key: string(c.Key), timeout: c.Timeout.D(), retries: c.RetryCount(),
		http: &hc, sleep: o.Sleep, jitter: o.Jitter, now: o.Now, log: o.Log}, nil
}

// BaseURL is the API the client calls.
func (c *Client) BaseURL() string { return c.base }

// Error is Vapi refusing a request, or the last failure of one that could
// not be completed (Status 0: no answer).
type Error struct {
	// Status is the HTTP status (0 when no answer came).
	Status int
	// Message is Vapi's own message (its JSON body's "message", a string
	// or a list joined with "; "), on one line and truncated; or why no
	// answer came.
	Message string
	// Method and Path name the request ("PATCH", "/assistant/…").
	Method, Path string
	// RetryAfter is the wait Vapi asked for with a 429 or 503 (0: none).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vapi api: %s %s: ", e.Method, e.Path)
	if e.Status == 0 {
		b.WriteString(e.Message)
		return b.String()
	}
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// ErrNotFound is a resource Vapi does not have (404).
var ErrNotFound = errors.New("vapi api: not found")

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// List returns every resource of a kind. Vapi answers at most PageLimit
// items per request and has no cursor: pages are asked by creation time,
// newest first, each one for the items created at or before the oldest one
// seen so far (createdAtLe), until a short page; an item seen twice is
// kept once. (Credentials' first page is asked without parameters.) (createdAtLe rather than createdAtLt: items created in the
// same millisecond as the page boundary are not skipped.) A full page that
// brings nothing new — more than PageLimit items created in one
// millisecond — is an error rather than a silent short list.
func (c *Client) List(ctx context.Context, kind Kind) ([]Resource, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("vapi api: unknown kind %q", kind)
	}
	seen := map[string]bool{}
	var out []Resource
	oldest := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("vapi api: GET /%s: more than %d pages", kind, maxPages)
		}
		q := url.Values{"limit": {strconv.Itoa(PageLimit)}}
		if oldest != "" {
			q.Set("createdAtLe", oldest)
		} else if kind == Credential {
			// /credential is not in Vapi's public API description: its
			// first page is asked without parameters, which it may not
			// know; only a full page makes paging necessary.
			q = nil
		}
		body, err := c.do(ctx, http.MethodGet, "/"+string(kind), q, nil)
		if err != nil {
			return nil, err
		}
		items, err := decodeList(body)
		if err != nil {
			return nil, &Error{Method: http.MethodGet, Path: "/" + string(kind), Message: "unreadable answer: " + err.Error()}
		}
		fresh := 0
		for _, r := range items {
			id := r.ID()
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			out = append(out, r)
			if ca := r.CreatedAt(); ca != "" && (oldest == "" || earlier(ca, oldest)) {
				oldest = ca
			}
		}
		if len(items) < PageLimit {
			return out, nil
		}
		if fresh == 0 {
			return nil, &Error{Method: http.MethodGet, Path: "/" + string(kind),
				Message: fmt.Sprintf("more than %d items were created at %s: they cannot be paged by creation time", PageLimit, oldest)}
		}
	}
}

// earlier compares two of Vapi's ISO 8601 times (as times when both parse,
// else as strings).
func earlier(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	if err1 != nil || err2 != nil {
		return a < b
	}
	return ta.Before(tb)
}

// decodeList reads a list answer: an array, or (structured outputs) an
// object with "results".
func decodeList(b []byte) ([]Resource, error) {
	v, err := Decode(b)
	if err != nil {
		return nil, err
	}
	var arr []any
	switch t := v.(type) {
	case []any:
		arr = t
	case map[string]any:
		r, ok := t["results"].([]any)
		if !ok {
			return nil, errors.New("an object without results")
		}
		arr = r
	default:
		return nil, errors.New("neither an array nor an object")
	}
	out := make([]Resource, 0, len(arr))
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, errors.New("an item is not an object")
		}
		out = append(out, m)
	}
	return out, nil
}

// Get returns one resource; a 404 is an *Error that errors.Is ErrNotFound.
func (c *Client) Get(ctx context.Context, kind Kind, id string) (Resource, error) {
	p, err := resourcePath(kind, id)
	if err != nil {
		return nil, err
	}
	return c.doResource(ctx, http.MethodGet, p, nil)
}

// Create posts a new resource (the fields Vapi assigns are left out) and
// returns it as Vapi stored it.
func (c *Client) Create(ctx context.Context, kind Kind, r Resource) (Resource, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("vapi api: unknown kind %q", kind)
	}
	return c.doResource(ctx, http.MethodPost, "/"+string(kind), r.WithoutServerFields())
}

// Update patches a resource: each top-level field of patch replaces the
// stored one whole (Vapi does not merge nested objects: send a changed
// object complete — Modify does). The fields Vapi assigns are left out.
func (c *Client) Update(ctx context.Context, kind Kind, id string, patch Resource) (Resource, error) {
	p, err := resourcePath(kind, id)
	if err != nil {
		return nil, err
	}
	return c.doResource(ctx, http.MethodPatch, p, patch.WithoutServerFields())
}

// Delete deletes a resource; a 404 is an *Error that errors.Is
// ErrNotFound.
func (c *Client) Delete(ctx context.Context, kind Kind, id string) error {
	p, err := resourcePath(kind, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// Modify reads a resource, lets change edit it in place (any field, at any
// depth) and, when it changed something, patches the top-level fields that
// differ, each sent whole as edited: everything change did not touch —
// other top-level fields, and the fields beside the edited ones inside an
// object such as model.temperature next to model.messages — is sent back
// as read or not sent, so nothing set elsewhere is dropped. A phone
// number's patch keeps its provider (Vapi's discriminator). It returns the
// resource as stored and whether a patch was sent. Vapi has no conditional
// update: a dashboard edit of the same top-level object between the read
// and the patch is overwritten.
func (c *Client) Modify(ctx context.Context, kind Kind, id string, change func(Resource) error) (Resource, bool, error) {
	before, err := c.Get(ctx, kind, id)
	if err != nil {
		return nil, false, err
	}
	after := before.Clone()
	if err := change(after); err != nil {
		return before, false, err
	}
	patch := TopLevelPatch(kind, before, after)
	if len(patch) == 0 {
		return before, false, nil
	}
	stored, err := c.Update(ctx, kind, id, patch)
	if err != nil {
		return before, false, err
	}
	return stored, true, nil
}

// TopLevelPatch is the patch that turns before into after: every
// top-level field whose value differs, whole (a field gone in after is
// sent as null, which clears it); the fields Vapi assigns never. A phone
// number's patch carries its provider.
func TopLevelPatch(kind Kind, before, after Resource) Resource {
	patch := Resource{}
	for k, v := range after {
		if ServerField(k) {
			continue
		}
		if old, ok := before[k]; !ok || !Equal(old, v) {
			patch[k] = v
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok && !ServerField(k) {
			patch[k] = nil
		}
	}
	if len(patch) > 0 && kind == PhoneNumber {
		if p, ok := after["provider"]; ok {
			patch["provider"] = p
		}
	}
	return patch
}

func resourcePath(kind Kind, id string) (string, error) {
	if !kind.Valid() {
		return "", fmt.Errorf("vapi api: unknown kind %q", kind)
	}
	// An id is one path segment: it cannot reach another endpoint.
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\?#%") || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("vapi api: %q is not a %s id", id, kind)
	}
	return "/" + string(kind) + "/" + url.PathEscape(id), nil
}

func (c *Client) doResource(ctx context.Context, method, path string, body Resource) (Resource, error) {
	b, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return nil, err
	}
	r, err := DecodeResource(b)
	if err != nil {
		return nil, &Error{Method: method, Path: path, Message: "unreadable answer: " + err.Error()}
	}
	return r, nil
}

// do sends one request, retrying what may be retried, and returns the 2xx
// answer's body. What may be retried: a 429 and a 5xx, and a connection
// that failed before an answer — except that a create (POST) is retried
// only when Vapi cannot have acted on it (429, 503, or a connection never
// made), never after a 500, 502 or 504 or a connection lost mid-request,
// which may have created the resource: a retry would create it twice.
// The waits honour Retry-After (seconds or an HTTP date, capped at
// MaxRetryAfter) or back off exponentially with jitter; a wait the context
// cannot afford ends the request with the last error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body Resource) ([]byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = Marshal(body); err != nil {
			return nil, fmt.Errorf("vapi api: %s %s: encode: %w", method, path, err)
		}
	}
	hide := sentSecrets(body, nil)
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	for attempt := 0; ; attempt++ {
		b, retry, err := c.once(ctx, method, path, target, payload, hide)
		if err == nil {
			return b, nil
		}
		if !retry || attempt >= c.retries || ctx.Err() != nil {
			return nil, err
		}
		wait := c.backoff(attempt)
		var ve *Error
		if errors.As(err, &ve) && ve.RetryAfter > 0 {
			wait = ve.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, err
		}
		c.log.Debug("vapi api retry", "method", method, logkey.Path, path, logkey.Status, statusOf(err), logkey.DelayMS, wait.Milliseconds())
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, err
		}
	}
}

func statusOf(err error) int {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Status
	}
	return 0
}

// backoff is the wait before retry attempt+1: backoffBase doubled per
// attempt, capped, then spread over its upper half.
func (c *Client) backoff(attempt int) time.Duration {
	d := backoffBase << min(attempt, 10)
	d = min(d, backoffMax)
	return d/2 + time.Duration(c.jitter()*float64(d/2))
}

// once sends one attempt; retry says whether another may be made.
func (c *Client) once(ctx context.Context, method, path, target string, payload []byte, hide []string) (_ []byte, retry bool, _ error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return nil, false, &Error{Method: method, Path: path, Message: "bad request: " + c.clean(err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		never := neverSent(err)
		msg := transportMessage(err, ctx, actx, c.timeout)
		return nil, method != http.MethodPost || never, &Error{Method: method, Path: path, Message: c.clean(msg)}
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		switch {
		case rerr != nil:
			// The answer was lost: a create may have been made.
			return nil, method != http.MethodPost, &Error{Status: 0, Method: method, Path: path, Message: "reading the answer: " + c.clean(transportMessage(rerr, ctx, actx, c.timeout))}
		case len(b) > maxBody:
			return nil, false, &Error{Status: resp.StatusCode, Method: method, Path: path, Message: fmt.Sprintf("answer larger than %d bytes", maxBody)}
		}
		return b, false, nil
	}
	msg := vapiMessage(b)
	for _, h := range hide {
		msg = strings.ReplaceAll(msg, h, redacted)
	}
	e := &Error{Status: resp.StatusCode, Method: method, Path: path, Message: c.clean(msg)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
		return nil, true, e
	case resp.StatusCode >= 500:
		return nil, method != http.MethodPost, e
	}
	return nil, false, e
}

// neverSent reports whether a transport error happened before the request
// could reach Vapi (no connection, no TLS session), so that even a create
// may be retried.
func neverSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return true
	}
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// transportMessage says why no answer came, without the URL (the client's
// errors quote it; it holds no secret, but keep errors short).
func transportMessage(err error, ctx, actx context.Context, timeout time.Duration) string {
	switch {
	case ctx.Err() != nil:
		return ctx.Err().Error()
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s (vapi.api.timeout)", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// vapiMessage is the message of Vapi's JSON error body
// ({"message": string | [string], "error": string, "statusCode": n}), or
// "" for any other body (an HTML page from a proxy is not quoted).
func vapiMessage(b []byte) string {
	var body struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(body.Message, &s) == nil && s != "" {
		return s
	}
	var list []any
	if json.Unmarshal(body.Message, &list) == nil && len(list) > 0 {
		parts := make([]string, 0, len(list))
		for _, e := range list {
			if str, ok := e.(string); ok {
				parts = append(parts, str)
			} else if j, err := json.Marshal(e); err == nil {
				parts = append(parts, string(j))
			}
		}
		return strings.Join(parts, "; ")
	}
	return body.Error
}

// sentSecrets returns the secrets a request body carries (a credential's
// secretKey, token, clientSecret), which an error answer echoing the
// request must not carry into an error: errors are stored, printed and
// logged.
func sentSecrets(v any, out []string) []string {
	switch v := v.(type) {
	case Resource:
		return sentSecrets(map[string]any(v), out)
	case map[string]any:
		for k, e := range v {
			switch k {
			case "secretKey", "token", "clientSecret", "secret":
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
			out = sentSecrets(e, out)
		}
	case []any:
		for _, e := range v {
			out = sentSecrets(e, out)
		}
	}
	return out
}

// clean puts a message on one printable line, truncated, with the key
// (should any answer echo it) replaced.
func (c *Client) clean(s string) string {
	if c.key != "" {
		s = strings.ReplaceAll(s, c.key, redacted)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped
// at MaxRetryAfter; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, MaxRetryAfter.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return max(0, min(d, MaxRetryAfter))
}
