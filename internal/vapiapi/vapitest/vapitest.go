// Package vapitest stands in for Vapi's management API — an external
// service voicegate's tests cannot call — with an HTTP server on 127.0.0.1
// that behaves as Vapi's API does for the endpoints voicegate uses:
//
//   - assistants, tools, phone numbers, squads, structured outputs and
//     credentials, kept in memory per kind, each given an id, orgId,
//     createdAt and updatedAt (ISO 8601, milliseconds; from a clock that
//     advances 1 ms per write unless SetClock replaces it);
//   - every request needs "Authorization: Bearer <Key>" (401 otherwise);
//   - lists return at most 100 items (limit, default and cap 100), newest
//     first, filtered by createdAtGt, createdAtLt, createdAtGe, createdAtLe;
//     structured outputs answer {"results": [...], "metadata": {...}} as
//     Vapi does;
//   - PATCH replaces each top-level field it carries whole — nested objects
//     are not merged, so a patch of "model" without "temperature" drops it;
//     a null clears the field. A phone number's PATCH must carry its
//     provider (Vapi's discriminator);
//   - a body carrying id, orgId, createdAt or updatedAt, or missing a field
//     Vapi requires, is refused with Vapi's error shape
//     {"message": [...], "error": "Bad Request", "statusCode": 400};
//   - credentials' secrets (secretKey, token, clientSecret) are write-only:
//     kept, never returned;
//   - faults are injected on demand (Inject: 429 with Retry-After, 5xx), and
//     mutating requests are counted (Mutations);
//   - Sign signs an outgoing webhook as Vapi would for an assistant, with
//     the credential its server.credentialId references at that moment.
//
// Test code edits resources directly, as a user would in the dashboard
// (Put, Set, Remove), without counting.
package vapitest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// OrgID is the org every resource belongs to.
const OrgID = "0rg00000-0000-4000-8000-000000000001"

// Request is one request the stand-in answered.
type Request struct {
	Method, Path string
	Query        string
	Status       int
}

// Fault makes the next matching requests fail.
type Fault struct {
	// Method and Kind select the requests ("" matches any).
	Method string
	Kind   vapiapi.Kind
	// Status is answered (429, 500, 502, 503...).
	Status int
	// RetryAfter is sent as the Retry-After header ("" none): seconds or
	// an HTTP date.
	RetryAfter string
	// Times is how many requests fail (at least 1).
	Times int
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to configure as vapi.api.base_url.
	URL string
	// Key is the private API key every request must carry.
	Key string

	srv       *httptest.Server
	mu        sync.Mutex
	items     map[vapiapi.Kind]map[string]vapiapi.Resource
	secrets   map[string]map[string]any // credential id -> its plan as written
	clock     func() time.Time
	tick      time.Time
	seq       int
	faults    []Fault
	mutations int
	requests  []Request
}

// New starts a stand-in with a random key, closed when the test ends.
func New(tb testing.TB) *Server {
	b := make([]byte, 16)
	rand.Read(b)
	return NewWithKey(tb, "vapi-test-key-"+hex.EncodeToString(b))
}

// NewWithKey starts a stand-in that requires key.
func NewWithKey(tb testing.TB, key string) *Server {
	tb.Helper()
	s := &Server{Key: key, items: map[vapiapi.Kind]map[string]vapiapi.Resource{}, secrets: map[string]map[string]any{},
		tick: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, k := range vapiapi.Kinds() {
		s.items[k] = map[string]vapiapi.Resource{}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// SetClock replaces the clock that stamps createdAt and updatedAt (nil:
// the default, advancing 1 ms per write). A fixed clock gives many
// resources the same createdAt.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times < 1 {
		f.Times = 1
	}
	s.faults = append(s.faults, f)
}

// Mutations is how many POST, PATCH and DELETE requests were received
// with the right key (answered or failed).
func (s *Server) Mutations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mutations
}

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetCounts forgets the requests and the mutations counted so far.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutations, s.requests = 0, nil
}

// Put stores r as if it were created in the dashboard (given an id,
// orgId and times unless it has them) and returns it as stored.
func (s *Server) Put(kind vapiapi.Kind, r vapiapi.Resource) vapiapi.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	r = normalize(r)
	if r.ID() == "" {
		r["id"] = s.newID(kind)
	}
	now := s.stamp()
	if r.CreatedAt() == "" {
		r["createdAt"] = now
	}
	if _, ok := r["updatedAt"]; !ok {
		r["updatedAt"] = now
	}
	r["orgId"] = OrgID
	if kind == vapiapi.Credential {
		s.keepSecrets(r)
	}
	s.items[kind][r.ID()] = r
	return s.public(kind, r)
}

// Get returns a copy of a stored resource (a credential without its
// secrets).
func (s *Server) Get(kind vapiapi.Kind, id string) (vapiapi.Resource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.items[kind][id]
	if !ok {
		return nil, false
	}
	return s.public(kind, r), true
}

// All returns copies of every stored resource of a kind, oldest first.
func (s *Server) All(kind vapiapi.Kind) []vapiapi.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]vapiapi.Resource, 0, len(s.items[kind]))
	for _, r := range s.items[kind] {
		out = append(out, s.public(kind, r))
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

// Set edits one field of a stored resource at a dotted path
// ("model.temperature"), as a dashboard user would; a nil value removes
// it. It reports whether the resource exists.
func (s *Server) Set(kind vapiapi.Kind, id, path string, v any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.items[kind][id]
	if !ok {
		return false
	}
	v = normalizeValue(v)
	if v == nil {
		segs := strings.Split(path, ".")
		m := map[string]any(r)
		for _, seg := range segs[:len(segs)-1] {
			if m, ok = m[seg].(map[string]any); !ok {
				return true
			}
		}
		delete(m, segs[len(segs)-1])
	} else {
		r.Set(path, v)
	}
	r["updatedAt"] = s.stamp()
	return true
}

// Remove deletes a stored resource, as a dashboard user would.
func (s *Server) Remove(kind vapiapi.Kind, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items[kind], id)
	delete(s.secrets, id)
}

// normalize turns any Go value into decoded JSON (numbers as json.Number).
func normalize(r vapiapi.Resource) vapiapi.Resource {
	m, _ := normalizeValue(map[string]any(r)).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func normalizeValue(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("vapitest: not JSON: %v", err))
	}
	out, err := vapiapi.Decode(b)
	if err != nil {
		panic(err)
	}
	return out
}

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock().UTC()
	}
	s.tick = s.tick.Add(time.Millisecond)
	return s.tick
}

func (s *Server) stamp() string { return s.now().Format("2006-01-02T15:04:05.000Z") }

// newID returns a UUID-shaped id, the same in every run for the same
// sequence of creations (readable test output).
func (s *Server) newID(kind vapiapi.Kind) string {
	s.seq++
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", kind, s.seq)))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

// credentialSecrets are the write-only fields of an authentication plan.
var credentialSecrets = []string{"secretKey", "token", "clientSecret"}

func (s *Server) keepSecrets(r vapiapi.Resource) {
	if plan, ok := r["authenticationPlan"].(map[string]any); ok {
		s.secrets[r.ID()] = vapiapi.Clone(plan).(map[string]any)
	}
}

// public is a copy of r as the API returns it.
func (s *Server) public(kind vapiapi.Kind, r vapiapi.Resource) vapiapi.Resource {
	out := r.Clone()
	if kind == vapiapi.Credential {
		if plan, ok := out["authenticationPlan"].(map[string]any); ok {
			for _, k := range credentialSecrets {
				delete(plan, k)
			}
		}
	}
	return out
}

func less(a, b vapiapi.Resource) bool {
	if a.CreatedAt() != b.CreatedAt() {
		return a.CreatedAt() < b.CreatedAt()
	}
	return a.ID() < b.ID()
}

// vapiError writes Vapi's error shape.
func vapiError(w http.ResponseWriter, status int, message any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"message": message, "error": http.StatusText(status), "statusCode": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// statusWriter records the status answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: sw.status})
		s.mu.Unlock()
	}()
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		vapiError(sw, http.StatusUnauthorized, "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	kind := vapiapi.Kind(segs[0])
	if !kind.Valid() || len(segs) > 2 {
		vapiError(sw, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
		return
	}
	id := ""
	if len(segs) == 2 {
		id = segs[1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodDelete {
		s.mutations++
	}
	for i := range s.faults {
		f := &s.faults[i]
		if f.Times > 0 && (f.Method == "" || f.Method == r.Method) && (f.Kind == "" || f.Kind == kind) {
			f.Times--
			if f.RetryAfter != "" {
				sw.Header().Set("Retry-After", f.RetryAfter)
			}
			vapiError(sw, f.Status, "injected failure")
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && id == "":
		s.list(sw, r, kind)
	case r.Method == http.MethodGet:
		s.get(sw, kind, id)
	case r.Method == http.MethodPost && id == "":
		s.create(sw, r, kind)
	case r.Method == http.MethodPatch && id != "":
		s.update(sw, r, kind, id)
	case r.Method == http.MethodDelete && id != "":
		s.delete(sw, kind, id)
	default:
		vapiError(sw, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, kind vapiapi.Kind) {
	q := r.URL.Query()
	limit := vapiapi.PageLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			vapiError(w, http.StatusBadRequest, []string{"limit must not be less than 1"})
			return
		}
		limit = min(n, vapiapi.PageLimit)
	}
	type bound struct {
		name string
		keep func(c, b time.Time) bool
	}
	bounds := []bound{
		{"createdAtGt", func(c, b time.Time) bool { return c.After(b) }},
		{"createdAtLt", func(c, b time.Time) bool { return c.Before(b) }},
		{"createdAtGe", func(c, b time.Time) bool { return !c.Before(b) }},
		{"createdAtLe", func(c, b time.Time) bool { return !c.After(b) }},
	}
	var all []vapiapi.Resource
	for _, it := range s.items[kind] {
		all = append(all, it)
	}
	for _, b := range bounds {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			vapiError(w, http.StatusBadRequest, []string{b.name + " must be a valid ISO 8601 date string"})
			return
		}
		kept := all[:0]
		for _, it := range all {
			c, _ := time.Parse(time.RFC3339Nano, it.CreatedAt())
			if b.keep(c, t) {
				kept = append(kept, it)
			}
		}
		all = kept
	}
	sort.Slice(all, func(i, j int) bool { return less(all[j], all[i]) }) // newest first
	total := len(all)
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]any, len(all))
	for i, it := range all {
		out[i] = s.public(kind, it)
	}
	if kind == vapiapi.StructuredOutput {
		writeJSON(w, http.StatusOK, map[string]any{"results": out, "metadata": map[string]any{"itemsPerPage": limit, "totalItems": total, "currentPage": 1}})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, kind vapiapi.Kind, id string) {
	it, ok := s.items[kind][id]
	if !ok {
		vapiError(w, http.StatusNotFound, fmt.Sprintf("%s not found", kindName(kind)))
		return
	}
	writeJSON(w, http.StatusOK, s.public(kind, it))
}

func kindName(k vapiapi.Kind) string {
	n := strings.ReplaceAll(string(k), "-", " ")
	return strings.ToUpper(n[:1]) + n[1:]
}

// readBody decodes a JSON object body, refusing the fields Vapi assigns.
func readBody(w http.ResponseWriter, r *http.Request) (vapiapi.Resource, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		vapiError(w, http.StatusBadRequest, "unreadable body")
		return nil, false
	}
	body, err := vapiapi.DecodeResource(b)
	if err != nil {
		vapiError(w, http.StatusBadRequest, "Unexpected token in JSON body")
		return nil, false
	}
	var probs []string
	for _, k := range []string{"id", "orgId", "createdAt", "updatedAt"} {
		if _, ok := body[k]; ok {
			probs = append(probs, "property "+k+" should not exist")
		}
	}
	if len(probs) > 0 {
		vapiError(w, http.StatusBadRequest, probs)
		return nil, false
	}
	return body, true
}

var functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// check returns what Vapi would refuse in a resource as it would be
// stored (a subset of Vapi's validation: the fields it requires and the
// ones voicegate sets).
func check(kind vapiapi.Kind, r vapiapi.Resource) []string {
	var probs []string
	switch kind {
	case vapiapi.Tool:
		t, _ := r["type"].(string)
		if t == "" {
			probs = append(probs, "type must be a string")
		}
		if t == "function" {
			if n := r.String("function.name"); !functionName.MatchString(n) {
				probs = append(probs, "function.name must match /^[a-zA-Z0-9_-]{1,64}$/ regular expression")
			}
		}
	case vapiapi.PhoneNumber:
		switch r.String("provider") {
		case "vapi", "twilio", "vonage", "telnyx", "byo-phone-number":
		default:
			probs = append(probs, "provider must be one of the following values: byo-phone-number, twilio, vonage, vapi, telnyx")
		}
	case vapiapi.Squad:
		if m, ok := r["members"].([]any); !ok || len(m) == 0 {
			probs = append(probs, "members must contain at least 1 elements")
		}
	case vapiapi.StructuredOutput:
		if r.Name() == "" {
			probs = append(probs, "name must be a string")
		}
		if _, ok := r["schema"].(map[string]any); !ok {
			probs = append(probs, "schema must be an object")
		}
	case vapiapi.Credential:
		if r.String("provider") == "" {
			probs = append(probs, "provider must be a string")
		}
		if r.String("provider") == "webhook" {
			switch r.String("authenticationPlan.type") {
			case "hmac":
				if r.String("authenticationPlan.algorithm") == "" {
					probs = append(probs, "authenticationPlan.algorithm must be one of the following values: sha256, sha512, sha1")
				}
			case "bearer", "oauth2":
			default:
				probs = append(probs, "authenticationPlan.type must be one of the following values: oauth2, hmac, bearer")
			}
		}
	}
	if v, ok := r.Lookup("server.timeoutSeconds"); ok {
		n, isNum := v.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil || f < 1 || f > 300 {
			probs = append(probs, "server.timeoutSeconds must not be greater than 300")
		}
	}
	return probs
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, kind vapiapi.Kind) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if probs := check(kind, body); len(probs) > 0 {
		vapiError(w, http.StatusBadRequest, probs)
		return
	}
	body["id"] = s.newID(kind)
	body["orgId"] = OrgID
	now := s.stamp()
	body["createdAt"], body["updatedAt"] = now, now
	if kind == vapiapi.Credential {
		s.keepSecrets(body)
	}
	s.items[kind][body.ID()] = body
	writeJSON(w, http.StatusCreated, s.public(kind, body))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, kind vapiapi.Kind, id string) {
	cur, ok := s.items[kind][id]
	if !ok {
		vapiError(w, http.StatusNotFound, fmt.Sprintf("%s not found", kindName(kind)))
		return
	}
	patch, ok := readBody(w, r)
	if !ok {
		return
	}
	if kind == vapiapi.PhoneNumber && patch.String("provider") != cur.String("provider") {
		vapiError(w, http.StatusBadRequest, []string{"provider must be one of the following values: byo-phone-number, twilio, vonage, vapi, telnyx"})
		return
	}
	next := cur.Clone()
	for k, v := range patch {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	if probs := check(kind, next); len(probs) > 0 {
		vapiError(w, http.StatusBadRequest, probs)
		return
	}
	next["updatedAt"] = s.stamp()
	if kind == vapiapi.Credential {
		if plan, ok := patch["authenticationPlan"].(map[string]any); ok {
			s.secrets[id] = vapiapi.Clone(plan).(map[string]any)
		}
	}
	s.items[kind][id] = next
	writeJSON(w, http.StatusOK, s.public(kind, next))
}

func (s *Server) delete(w http.ResponseWriter, kind vapiapi.Kind, id string) {
	cur, ok := s.items[kind][id]
	if !ok {
		vapiError(w, http.StatusNotFound, fmt.Sprintf("%s not found", kindName(kind)))
		return
	}
	delete(s.items[kind], id)
	delete(s.secrets, id)
	writeJSON(w, http.StatusOK, s.public(kind, cur))
}

// Sign returns the headers Vapi would send with body to the server of
// assistant assistantID at time at: those of the credential its
// server.credentialId references now (HMAC: the signature and, unless
// includeTimestamp is false, the timestamp in Unix seconds; bearer: the
// token), plus its server.headers.
func (s *Server) Sign(assistantID string, body []byte, at time.Time) (http.Header, error) {
	return s.SignFor(vapiapi.Assistant, assistantID, body, at)
}

// SignFor is Sign for the server of any resource (a phone number, a tool).
func (s *Server) SignFor(kind vapiapi.Kind, id string, body []byte, at time.Time) (http.Header, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.items[kind][id]
	if !ok {
		return nil, fmt.Errorf("vapitest: no %s %s", kind, id)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	srv, _ := r["server"].(map[string]any)
	if hs, ok := srv["headers"].(map[string]any); ok {
		for k, v := range hs {
			if str, ok := v.(string); ok {
				h.Set(k, str)
			}
		}
	}
	credID := r.String("server.credentialId")
	if credID == "" {
		return nil, fmt.Errorf("vapitest: %s %s has no server.credentialId (Vapi would pick any of the org's credentials)", kind, id)
	}
	plan, ok := s.secrets[credID]
	if !ok {
		return nil, fmt.Errorf("vapitest: %s %s references credential %s, which does not exist", kind, id, credID)
	}
	str := func(k, def string) string {
		if v, ok := plan[k].(string); ok && v != "" {
			return v
		}
		return def
	}
	switch plan["type"] {
	case "bearer":
		v := str("token", "")
		if b, ok := plan["bearerPrefixEnabled"].(bool); !ok || b {
			v = "Bearer " + v
		}
		if h.Get(str("headerName", "Authorization")) == "" { // server.headers' Authorization wins
			h.Set(str("headerName", "Authorization"), v)
		}
		return h, nil
	case "hmac":
	default:
		return nil, fmt.Errorf("vapitest: credential %s has plan type %v: only hmac and bearer are signed", credID, plan["type"])
	}
	var newHash func() hash.Hash
	switch str("algorithm", "sha256") {
	case "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	case "sha1":
		newHash = sha1.New
	default:
		return nil, fmt.Errorf("vapitest: unknown algorithm %v", plan["algorithm"])
	}
	key := []byte(str("secretKey", ""))
	if b, _ := plan["secretIsBase64"].(bool); b {
		k, err := base64.StdEncoding.DecodeString(string(key))
		if err != nil {
			return nil, fmt.Errorf("vapitest: secretKey is not base64")
		}
		key = k
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	if b, ok := plan["includeTimestamp"].(bool); ok && !b {
		ts = ""
	} else {
		h.Set(str("timestampHeader", "x-timestamp"), ts)
	}
	s.seq++
	msgID := fmt.Sprintf("msg_%d", s.seq)
	if mh := str("messageIdHeader", ""); mh != "" {
		h.Set(mh, msgID)
	}
	format := str("payloadFormat", "{timestamp}.{body}")
	rep := strings.NewReplacer("{timestamp}", ts, "{method}", http.MethodPost, "{url}", r.String("server.url"), "{svix-id}", msgID)
	pre, post, hasBody := strings.Cut(format, "{body}")
	m := hmac.New(newHash, key)
	io.WriteString(m, rep.Replace(pre))
	if hasBody {
		m.Write(body)
		io.WriteString(m, rep.Replace(post))
	}
	sum := m.Sum(nil)
	sig := hex.EncodeToString(sum)
	if str("signatureEncoding", "hex") == "base64" {
		sig = base64.StdEncoding.EncodeToString(sum)
	}
	h.Set(str("signatureHeader", "x-signature"), str("signaturePrefix", "")+sig)
	return h, nil
}

// Send posts body to assistant assistantID's server.url with the headers
// Sign gives, as Vapi delivers a webhook (hc nil: http.DefaultClient).
func (s *Server) Send(ctx context.Context, hc *http.Client, assistantID string, body []byte) (*http.Response, error) {
	h, err := s.Sign(assistantID, body, time.Now())
	if err != nil {
		return nil, err
	}
	r, _ := s.Get(vapiapi.Assistant, assistantID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.String("server.url"), strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header = h
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}
