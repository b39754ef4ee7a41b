package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

// A shared chain (storage.driver postgres) is one chain for the whole
// deployment, however many replicas append to it:
//
//   - its MAC key is derived from the records keyring's lookup key
//     (SharedKey), which every replica must already hold (serve refuses a
//     replica whose keyring differs), so there is no second secret to
//     distribute and no audit.key in data_dir;
//   - its head is a row of the database (Head), updated in the transaction
//     of each append while that transaction holds it locked (SELECT ...
//     FOR UPDATE): the replicas' appends are serialised by the database,
//     and the head always names the last entry;
//   - the head carries its own MAC: someone who can write the database but
//     lacks the keyring can neither cut the chain's tail (the head would
//     name a removed entry, and a head naming an earlier one needs the
//     key) nor forge an entry.
//
// What a head in the database cannot catch, and a file outside it could:
// a database rolled back as a whole (a restored backup) — chain and head
// consistent, older. docs/replicas.md says how to anchor it outside.

// Head is the end of a shared chain, as the database keeps it.
type Head struct {
	// Seq and Hash name the chain's last entry (0, nil: empty).
	Seq  int64
	Hash []byte
	// BaseSeq and BaseHash name the last entry written before the chain
	// was shared (0, nil: none): the entries up to it were MACed under the
	// audit.key of the replica that wrote them, those after it under the
	// shared key.
	BaseSeq  int64
	BaseHash []byte
	// MAC is HMAC-SHA256 under the shared key over the fields above; nil
	// while the chain was never appended to as a shared one.
	MAC []byte
}

// Sum is the head's MAC under key.
func (h Head) Sum(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("voicegate audit head v1"))
	var n [8]byte
	for _, v := range []int64{h.Seq, int64(len(h.Hash)), h.BaseSeq, int64(len(h.BaseHash))} {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		m.Write(n[:])
	}
	m.Write(h.Hash)
	m.Write(h.BaseHash)
	return m.Sum(nil)
}

// SharedStore keeps a chain that several processes append to. Beyond
// Store: AuditHead returns the head (a zero Head when none was written);
// AppendAudit runs fn in one transaction that holds the head locked
// against every other appender, giving it the head and the chain's last
// entry (ok false: empty), then inserts the entry fn returns (none when
// nil) and stores the head it returns; fn's error aborts the transaction
// and is returned as is.
type SharedStore interface {
	Store
	AuditHead(ctx context.Context) (Head, error)
	AppendAudit(ctx context.Context, fn func(h Head, last Entry, ok bool) (*Entry, Head, error)) error
}

// ErrKeyMismatch is a shared chain whose head does not verify under this
// process's key: it was written by a replica with another records keyring
// (or the head was tampered with).
var ErrKeyMismatch = errors.New("the audit log's head does not verify under this replica's audit key")

// SharedKey derives the shared chain's MAC key from the records keyring's
// lookup key (the same for every replica sharing the keyring).
func SharedKey(lookupKey []byte) []byte {
	m := hmac.New(sha256.New, lookupKey)
	m.Write([]byte("voicegate audit log key v1"))
	return m.Sum(nil)
}

// NewShared returns the log over a shared chain, its entries MACed under
// key (SharedKey). It checks the head at once: a head written under
// another key is ErrKeyMismatch (replicas with different keyrings must
// not write one chain). A chain written before it was shared (entries
// but no head) is taken over only once it verifies under the audit.key
// and head file of legacyDir, the data_dir of the replica that wrote it;
// without them it is refused, saying so.
func NewShared(ctx context.Context, store SharedStore, key []byte, legacyDir, actor string, now func() time.Time) (*Log, error) {
	if len(key) < 32 {
		return nil, errors.New("audit: the shared key is missing")
	}
	l := &Log{shared: store, key: key, actor: actor, now: now}
	h, err := store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if h.MAC != nil {
		if !hmac.Equal(h.Sum(key), h.MAC) {
			return nil, fmt.Errorf("%w: it was written by a replica with another records keyring (every replica needs the same records.keyring_env or keyring_file, see docs/replicas.md), or the audit_head row was tampered with", ErrKeyMismatch)
		}
		return l, nil
	}
	last, ok, err := store.LastAudit(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if !ok {
		return l, nil // a new chain: its first append writes the head
	}
	// Entries from before the chain was shared: check them under the key
	// and head file of the replica that wrote them, then anchor them.
	if legacyDir == "" {
		return nil, fmt.Errorf("audit: the log has %d entries from before it was shared and no data directory to check them with", last.Seq)
	}
	if _, err := loadKey(legacyDir, false); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit: the log has %d entries from before it was shared by the replicas, and %s has no %s to check them: start one replica once with the data_dir that holds %s and %s (the one that served before), see docs/replicas.md",
			last.Seq, legacyDir, keyName, keyName, headName)
	}
	n, err := Verify(ctx, store, legacyDir)
	if err != nil {
		return nil, fmt.Errorf("audit: the log's entries from before it was shared do not verify under %s: %w", legacyDir, err)
	}
	err = store.AppendAudit(ctx, func(h Head, cur Entry, ok bool) (*Entry, Head, error) {
		if h.MAC != nil {
			return nil, h, errAlreadyShared // another replica took it over meanwhile
		}
		if !ok || cur.Seq != n || cur.Seq != last.Seq || !hmac.Equal(cur.Hash, last.Hash) {
			return nil, h, fmt.Errorf("%w: the chain changed while it was being taken over", ErrTampered)
		}
		nh := Head{Seq: cur.Seq, Hash: cur.Hash, BaseSeq: cur.Seq, BaseHash: cur.Hash}
		nh.MAC = nh.Sum(key)
		return nil, nh, nil
	})
	if errors.Is(err, errAlreadyShared) {
		return NewShared(ctx, store, key, "", actor, now)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

var errAlreadyShared = errors.New("audit: taken over by another replica")

// appendShared appends to a shared chain in one transaction with its head.
func (l *Log) appendShared(ctx context.Context, event, subject, detail string) error {
	err := l.shared.AppendAudit(ctx, func(h Head, last Entry, ok bool) (*Entry, Head, error) {
		if err := l.checkSharedHead(h, last, ok); err != nil {
			return nil, h, err
		}
		e := Entry{Seq: h.Seq + 1, At: l.now(), Event: event, Subject: subject, Detail: detail, Actor: l.actor, Prev: h.Hash}
		if h.Seq == 0 {
			e.Prev = make([]byte, 32)
		}
		e.Hash = e.Sum(l.key)
		nh := Head{Seq: e.Seq, Hash: e.Hash, BaseSeq: h.BaseSeq, BaseHash: h.BaseHash}
		nh.MAC = nh.Sum(l.key)
		return &e, nh, nil
	})
	if err != nil && !errors.Is(err, ErrTampered) {
		return fmt.Errorf("audit: %w", err)
	}
	return err
}

// checkSharedHead: the head verifies and names the chain's last entry,
// which verifies too (ErrTampered otherwise: nothing is appended, so
// tampering is never covered by a new head).
func (l *Log) checkSharedHead(h Head, last Entry, ok bool) error {
	switch {
	case h.MAC == nil && ok:
		return fmt.Errorf("%w: the chain has %d entries but the database's head row is empty or missing", ErrTampered, last.Seq)
	case h.MAC == nil:
		return nil
	case !hmac.Equal(h.Sum(l.key), h.MAC):
		return fmt.Errorf("%w: the head row does not verify (edited, or written under another key)", ErrTampered)
	case !ok || last.Seq != h.Seq || !hmac.Equal(last.Hash, h.Hash):
		return fmt.Errorf("%w: the chain does not end at entry %d, where its head says", ErrTampered, h.Seq)
	case h.Seq > h.BaseSeq && !hmac.Equal(last.Sum(l.key), last.Hash):
		return fmt.Errorf("%w: entry %d does not verify", ErrTampered, last.Seq)
	}
	return nil
}

// SharedReport is what VerifyShared checked.
type SharedReport struct {
	// Entries is the number of entries that hold.
	Entries int64
	// Before is the number of entries written before the chain was shared;
	// BeforeChecked says whether their MACs were checked (under the
	// audit.key of the data directory given) or only their links.
	Before        int64
	BeforeChecked bool
}

// VerifyShared walks a shared chain and checks every entry's MAC under key
// (those from before the chain was shared under legacyDir's audit.key if
// it has one; else only their links), its link to the one before, that
// sequence numbers run without a gap from 1, and that the head row
// verifies and names the last entry. A tampered log is a *Problem naming
// the first bad entry. A chain never appended to as a shared one is
// verified as a replica's own (Verify, with legacyDir's key and head
// file). It takes no lock; entries appended while it runs are read too.
func VerifyShared(ctx context.Context, store SharedStore, key []byte, legacyDir string) (SharedReport, error) {
	var r SharedReport
	h, err := store.AuditHead(ctx)
	if err != nil {
		return r, err
	}
	if h.MAC == nil {
		if _, ok, err := store.LastAudit(ctx); err != nil || !ok {
			return r, err
		}
		if legacyDir == "" {
			return r, errors.New("audit: the log was never shared: verify it with the data_dir of the replica that wrote it")
		}
		n, err := Verify(ctx, store, legacyDir)
		r.Entries, r.Before, r.BeforeChecked = n, n, err == nil
		return r, err
	}
	if !hmac.Equal(h.Sum(key), h.MAC) {
		return r, &Problem{Seq: h.Seq, Reason: "the database's head row does not verify under this keyring's audit key: edited, or written by a replica with another keyring"}
	}
	var legacy []byte
	if h.BaseSeq > 0 && legacyDir != "" {
		if legacy, err = loadKey(legacyDir, false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return r, err
		}
	}
	r.Before, r.BeforeChecked = h.BaseSeq, h.BaseSeq == 0 || legacy != nil
	base := h
	c := newChain()
	walk := func() error {
		return c.walk(ctx, store, func(e Entry) *Problem {
			switch {
			case e.Seq > base.BaseSeq && !hmac.Equal(e.Sum(key), e.Hash),
				e.Seq <= base.BaseSeq && legacy != nil && !hmac.Equal(e.Sum(legacy), e.Hash):
				return &Problem{Seq: e.Seq, Reason: "its content does not match its hash: edited"}
			case e.Seq == base.BaseSeq && string(e.Hash) != string(base.BaseHash):
				return &Problem{Seq: e.Seq, Reason: "not the entry the chain was taken over at: the entries before the shared key were rewritten"}
			}
			r.Entries++
			return nil
		})
	}
	// The head is read after the chain: an append writes its entry and
	// the head in one transaction, so a head read later names an entry
	// at or after the last one walked — unless entries were removed.
	for attempt := 0; ; attempt++ {
		if err := walk(); err != nil {
			return r, err
		}
		if h, err = store.AuditHead(ctx); err != nil {
			return r, err
		}
		if !hmac.Equal(h.Sum(key), h.MAC) {
			return r, &Problem{Seq: h.Seq, Reason: "the database's head row does not verify: edited"}
		}
		if h.Seq <= c.seq || attempt >= 100 {
			break
		}
	}
	switch {
	case h.Seq > c.seq:
		return r, &Problem{Seq: c.seq + 1, Reason: fmt.Sprintf("the head names entry %d: entries after %d were removed", h.Seq, c.seq)}
	case h.Seq < c.seq:
		return r, &Problem{Seq: h.Seq + 1, Reason: fmt.Sprintf("entries after %d are not covered by the head: appended without it", h.Seq)}
	case string(h.Hash) != string(c.prev):
		return r, &Problem{Seq: h.Seq, Reason: "the chain's last hash differs from the head's: the chain was rewritten"}
	}
	return r, nil
}
