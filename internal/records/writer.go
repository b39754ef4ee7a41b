package records

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/pii"
)

// CallSecrets keep a random secret per call outside the records'
// database (internal/erasure): every record's envelope is bound to it, so
// erasing it makes the call's records unrecoverable even from an older copy
// of the database opened with the keyring.
type CallSecrets interface {
	// Secret returns the call's secret, creating it when create is set;
	// an error that Is ErrCallErased when the call was erased (never
	// re-created: an erased call stays erased), ErrSecretMissing when it
	// has none otherwise and create is unset.
	Secret(ctx context.Context, callID string, create bool) ([]byte, error)
	// Erase destroys it for good: the call stays erased.
	Erase(ctx context.Context, callID string) (bool, error)
	// MarkIdle notes that retention deleted the call's last record.
	MarkIdle(ctx context.Context, callID string, since time.Time) error
	// Idle returns up to limit calls marked idle before t.
	Idle(ctx context.Context, before time.Time, limit int) ([]string, error)
	// Forget destroys the secret (when forget is set) and the idle mark,
	// leaving no tombstone.
	Forget(ctx context.Context, callID string, forget bool) (bool, error)
	// Prepare makes the call's secret ahead of its first record, in the
	// background, never blocking; if the call never writes a record, its
	// secret is forgotten like an idle call's.
	Prepare(callID string, now time.Time)
}

// ErrCallErased is a call whose secret was destroyed by a purge.
var ErrCallErased = errors.New("call erased")

// ErrSecretMissing is a call with records but no secret that was not
// erased: the erasure store was restored from a backup older than the
// call, or is not the one the records were written with.
var ErrSecretMissing = errors.New("the call's secret is missing")

// Writer seals records and stores them; it opens them for an operator.
type Writer struct {
	store     Store
	keys      envelope.Keyring
	secrets   CallSecrets
	lookup    []byte
	redaction Redaction
	random    io.Reader
	now       func() time.Time
}

// Deps is what a Writer works with.
type Deps struct {
	Store Store
	// Keys seal new records with their current key.
	Keys envelope.Keyring
	// Secrets bind each record to its call's secret.
	Secrets CallSecrets
	// LookupKey keys the hashes of callers' numbers (see CallerHash).
	LookupKey []byte
	// Redaction is what is stored (default RedactNone).
	Redaction Redaction
	Random    io.Reader
	Now       func() time.Time
}

// NewWriter returns a writer over d.
func NewWriter(d Deps) *Writer {
	if d.Redaction == "" {
		d.Redaction = RedactNone
	}
	return &Writer{store: d.Store, keys: d.Keys, secrets: d.Secrets, lookup: d.LookupKey, redaction: d.Redaction, random: d.Random, now: d.Now}
}

// aad is what a record's envelope is bound to: its own fields and its
// call's secret.
func aad(r Sealed, secret []byte) []byte { return append(r.AAD(), secret...) }

// redactedAAD binds a record's redacted copy: the record's additional
// data, marked, so that the copy and the original never open as each
// other.
func redactedAAD(r Sealed, secret []byte) []byte { return append(aad(r, secret), "\x00redacted"...) }

// Store returns the store the writer keeps records in.
func (w *Writer) Store() Store { return w.store }

// Prepare readies what the records of a call starting now will need (its
// secret), in the background: its first tool call or report then does not
// wait for it.
func (w *Writer) Prepare(callID string) {
	if callID != "" {
		w.secrets.Prepare(callID, w.now())
	}
}

// Call is the call a record belongs to.
type Call struct {
	ID string
	// Caller is the other party's number, as Vapi reports it ("" when
	// unknown); only its keyed hash is stored.
	Caller string
}

// CallerHash returns the keyed hash (HMAC-SHA256, truncated to 128 bits,
// hex) that stands for a caller's number in the store and in the audit
// log; "" for no number. The number is normalised first (see
// NormalizeNumber), so "+1 (415) 555-0100" and "+14155550100" hash alike.
func (w *Writer) CallerHash(number string) string {
	number = NormalizeNumber(number)
	if number == "" || w.lookup == nil {
		return ""
	}
	m := hmac.New(sha256.New, w.lookup)
	m.Write([]byte("voicegate caller\x00"))
	m.Write([]byte(number))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// DedupKey returns a keyed hash (HMAC-SHA256 with the lookup key,
// truncated to 128 bits, hex) of what identifies a delivery that has no id
// of its own (a legacy function call: its timestamp, name and arguments).
// The dedup key is stored in clear: an unkeyed hash of small arguments (an
// SSN, a date) would be found by trying every value.
func (w *Writer) DedupKey(parts ...string) string {
	m := hmac.New(sha256.New, w.lookup)
	m.Write([]byte("voicegate dedup"))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return "keyed:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// NormalizeNumber removes the spaces, dashes, dots and parentheses people
// write in a phone number ("+1 (415) 555-0100" → "+14155550100"). A value
// that is not a phone number (a SIP URI) is only trimmed.
func NormalizeNumber(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case '0' <= c && c <= '9', c == '+' && b.Len() == 0:
			b.WriteByte(c)
		default:
			return s
		}
	}
	return b.String()
}

// put seals payload as a record of call and stores it once per dedup key.
func (w *Writer) put(ctx context.Context, c Call, kind Kind, dedup string, payload []byte) error {
	r := Sealed{ID: NewID(), CallID: c.ID, Kind: kind, DedupKey: dedup, CreatedAt: w.now(), CallerHash: w.CallerHash(c.Caller)}
	if w.redaction == RedactOnly {
		payload = pii.RedactJSON(payload)
	}
	secret, err := w.secrets.Secret(ctx, c.ID, true)
	if errors.Is(err, ErrCallErased) {
		return nil // the call was erased: nothing more of it is kept
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	var s envelope.Sealed
	if w.redaction == RedactCopy {
		// The redacted copy is sealed too, under the same data key: a purge
		// makes both unrecoverable at once, and what a WAL or a dead row
		// keeps of it is ciphertext.
		s, r.Redacted, err = envelope.SealPair(w.keys, w.random, payload, pii.RedactJSON(payload), aad(r, secret), redactedAAD(r, secret))
	} else {
		s, err = envelope.Seal(w.keys, w.random, payload, aad(r, secret))
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	r.Key, r.Payload = s.Key, s.Payload
	if _, err := w.store.PutRecord(ctx, r); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}

// EndOfCall stores what an end-of-call report carries (its whole message
// object, as sent): one record per call, however often it is delivered.
func (w *Writer) EndOfCall(ctx context.Context, c Call, message json.RawMessage) error {
	return w.put(ctx, c, KindEndOfCall, "end-of-call-report", message)
}

// ToolCall is one tool invocation as recorded.
type ToolCall struct {
	ToolCallID string          `json:"tool_call_id"`
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	Result     string          `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	Outcome    string          `json:"outcome"`
	DurationMS float64         `json:"duration_ms"`
}

// ToolCall stores one tool invocation: once per tool call id.
func (w *Writer) ToolCall(ctx context.Context, c Call, tc ToolCall) error {
	b, err := json.Marshal(tc)
	if err != nil {
		return fmt.Errorf("record tool call: %w", err)
	}
	return w.put(ctx, c, KindToolCall, tc.ToolCallID, b)
}

// Open decrypts a stored record.
func (w *Writer) Open(ctx context.Context, r Sealed) ([]byte, error) {
	if r.Key.KeyID == "" {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	secret, err := w.secrets.Secret(ctx, r.CallID, false)
	if errors.Is(err, ErrCallErased) {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	if errors.Is(err, ErrSecretMissing) {
		return nil, fmt.Errorf("record %s of call %s: %w (restore the erasure store that was in use when it was written)", r.ID, r.CallID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	b, err := envelope.Open(w.keys, envelope.Sealed{Key: r.Key, Payload: r.Payload}, aad(r, secret))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return b, nil
}

// OpenRedacted decrypts a record's redacted copy (records.redaction
// "copy"); ErrNoRedactedCopy when it has none.
func (w *Writer) OpenRedacted(ctx context.Context, r Sealed) ([]byte, error) {
	if len(r.Redacted) == 0 {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrNoRedactedCopy)
	}
	if r.Key.KeyID == "" {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	secret, err := w.secrets.Secret(ctx, r.CallID, false)
	if errors.Is(err, ErrCallErased) {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	b, err := envelope.OpenSecond(w.keys, r.Key, r.Redacted, aad(r, secret), redactedAAD(r, secret))
	if err != nil {
		return nil, fmt.Errorf("record %s (redacted copy): %w", r.ID, err)
	}
	return b, nil
}

// ErrNoRedactedCopy is a record stored without a redacted copy.
var ErrNoRedactedCopy = errors.New("no redacted copy (records.redaction was not \"copy\" when it was written)")

// RewrapBatch is how many records a rewrap reads at a time.
const RewrapBatch = 500

// Rewrap re-wraps the data key of every record not under the current key
// with the current key, leaving payloads untouched. It is resumable: an
// interrupted run leaves each record under its old key or its new one, and
// the next run carries on with those still under an old key. progress, if
// set, is called after each batch with the count so far.
func (w *Writer) Rewrap(ctx context.Context, progress func(done int)) (int, error) {
	usage, err := w.store.KeyUsage(ctx)
	if err != nil {
		return 0, err
	}
	cur := w.keys.Current()
	done := 0
	for id := range usage {
		if id == cur {
			continue
		}
		after := ""
		for {
			batch, err := w.store.UnderKey(ctx, id, after, RewrapBatch)
			if err != nil {
				return done, err
			}
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				if err := ctx.Err(); err != nil {
					return done, err
				}
				secret, err := w.secrets.Secret(ctx, r.CallID, false)
				if errors.Is(err, ErrCallErased) {
					// Erased, but a key is left: a record written while
					// the purge ran. Nothing can open it; shred it so that
					// it does not hold its key-encryption key.
					if _, err := w.store.ShredCall(ctx, r.CallID); err != nil {
						return done, err
					}
					after = r.ID
					continue
				}
				if errors.Is(err, ErrSecretMissing) {
					// Not erased: its secret may be in another copy of the
					// erasure store. Never shredded on a guess.
					return done, fmt.Errorf("record %s of call %s: %w: restore the erasure store in use when it was written, or purge the call (voicegate records purge --call %s)", r.ID, r.CallID, err, r.CallID)
				}
				if err != nil {
					return done, err
				}
				next, err := envelope.Rewrap(w.keys, r.Key, aad(r, secret))
				if err != nil {
					return done, fmt.Errorf("record %s: %w", r.ID, err)
				}
				ok, err := w.store.Rekey(ctx, r.ID, r.Key, next)
				if err != nil {
					return done, err
				}
				if ok {
					done++
				}
				after = r.ID
			}
			if progress != nil {
				progress(done)
			}
		}
	}
	return done, nil
}

// ErrKeyInUse is a key some records are still wrapped under.
var ErrKeyInUse = errors.New("key still in use")

// CheckRetire says whether key id may be retired: no record may still be
// wrapped under it.
func (w *Writer) CheckRetire(ctx context.Context, id string) error {
	usage, err := w.store.KeyUsage(ctx)
	if err != nil {
		return err
	}
	if n := usage[id]; n > 0 {
		return fmt.Errorf("key %s still wraps %d record(s): run voicegate keys rewrap first: %w", id, n, ErrKeyInUse)
	}
	return nil
}

// Purge erases a call: its secret is destroyed (its records can no longer
// be opened from any copy of the database) and so are its records'
// wrapped keys and redacted copies. It returns how many records it
// touched.
func (w *Writer) Purge(ctx context.Context, callID string) (int, error) {
	if _, err := w.secrets.Erase(ctx, callID); err != nil {
		return 0, err
	}
	return w.store.ShredCall(ctx, callID)
}

// PurgeCaller erases every call with a record of the caller's number. It
// returns the calls erased and how many records they had.
func (w *Writer) PurgeCaller(ctx context.Context, number string) (calls []string, n int, err error) {
	h := w.CallerHash(number)
	if h == "" {
		return nil, 0, errors.New("purge by caller: no number given")
	}
	ids, err := w.store.CallerCalls(ctx, h)
	if err != nil {
		return nil, 0, err
	}
	sort.Strings(ids)
	for _, id := range ids {
		k, err := w.Purge(ctx, id)
		if err != nil {
			return calls, n, fmt.Errorf("purge call %s: %w", id, err)
		}
		calls, n = append(calls, id), n+k
	}
	return calls, n, nil
}

// ExpireBatch is how many records the retention purge deletes at a time.
const ExpireBatch = 500

// IdleGrace is how long a call stays without records before retention
// forgets its secret: a call lasts at most 12 hours on Vapi, so a call
// whose records all expired while it was still going on (short retention
// of tool calls, a long call) keeps its secret for what it writes next.
const IdleGrace = 12 * time.Hour

// Expired is what a retention purge deleted.
type Expired struct {
	// Records counts the records deleted, by kind.
	Records map[Kind]int
	// Calls counts the calls whose secret was forgotten: they had no
	// record left for IdleGrace.
	Calls int
}

// String is the result as the audit log and the CLI write it.
func (e Expired) String() string {
	return fmt.Sprintf("end_of_call_report=%d tool_call=%d secrets_forgotten=%d", e.Records[KindEndOfCall], e.Records[KindToolCall], e.Calls)
}

// Expire deletes the records older than their kind's retention period.
// A call left with no record is marked idle; the secret of a call idle
// for IdleGrace and still without records is forgotten, so that a copy of
// the database taken before cannot open its records either. Unlike a
// purge, this leaves no tombstone: a call is not erased by retention, a
// record it writes later is kept.
func (w *Writer) Expire(ctx context.Context, periods map[Kind]time.Duration) (Expired, error) {
	res := Expired{Records: map[Kind]int{}}
	now := w.now()
	for kind, period := range periods {
		for {
			ids, err := w.store.DeleteBefore(ctx, kind, now.Add(-period), ExpireBatch)
			if err != nil {
				return res, err
			}
			res.Records[kind] += len(ids)
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					continue
				}
				seen[id] = true
				if err := w.markIfIdle(ctx, id, now); err != nil {
					return res, err
				}
			}
			if len(ids) < ExpireBatch {
				break
			}
		}
	}
	for {
		idle, err := w.secrets.Idle(ctx, now.Add(-IdleGrace), ExpireBatch)
		if err != nil {
			return res, err
		}
		for _, id := range idle {
			left, err := w.store.CallRecords(ctx, id)
			if err != nil {
				return res, err
			}
			// Records again (the call went on): keep the secret.
			forgot, err := w.secrets.Forget(ctx, id, len(left) == 0)
			if err != nil {
				return res, err
			}
			if forgot {
				res.Calls++
			}
		}
		if len(idle) < ExpireBatch {
			return res, nil
		}
	}
}

// markIfIdle marks call id idle when it has no record left.
func (w *Writer) markIfIdle(ctx context.Context, id string, now time.Time) error {
	left, err := w.store.CallRecords(ctx, id)
	if err != nil || len(left) > 0 {
		return err
	}
	return w.secrets.MarkIdle(ctx, id, now)
}
