// Package audit provides the tamper-evident audit log: security-relevant
// events (key rotations, record reads and purges, configuration reloads,
// authentication failures) appended to a hash chain in the database, each
// entry's hash covering the previous one's, with the chain's head also
// checkpointed in a file outside the database, so that a rewrite of the
// whole chain is detected too. Verify names the first entry that does not
// hold.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Entry is one event of the log.
type Entry struct {
	Seq   int64
	At    time.Time
	Event string // "keys.rotate", "records.read", "config.reload", ...
	// Subject is what the event is about: a key id, a record or call id,
	// a keyed hash of a phone number — never the number itself.
	Subject string
	// Detail is a short free text (never personal data).
	Detail string
	// Actor says who: "serve", "cli:<user>".
	Actor string
	Prev  []byte // the previous entry's Hash (32 zero bytes for the first)
	Hash  []byte
}

// Sum is the entry's hash: SHA-256 over its fields, each length-prefixed,
// and the previous hash.
func (e Entry) Sum() []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.At.UnixMilli()))
	h.Write(n[:])
	field([]byte(e.Event))
	field([]byte(e.Subject))
	field([]byte(e.Detail))
	field([]byte(e.Actor))
	field(e.Prev)
	return h.Sum(nil)
}

// ErrConflict is an append that lost a race for its sequence number.
var ErrConflict = errors.New("audit: sequence number taken")

// Store keeps the chain. Implementations pass the suite in audittest:
// InsertAudit stores an entry, or returns ErrConflict when its Seq exists;
// LastAudit returns the newest entry (ok false when empty); AuditRange
// returns up to limit entries after seq, in order.
type Store interface {
	InsertAudit(ctx context.Context, e Entry) error
	LastAudit(ctx context.Context) (e Entry, ok bool, err error)
	AuditRange(ctx context.Context, afterSeq int64, limit int) ([]Entry, error)
}

// Log appends to the chain and keeps its head file.
type Log struct {
	store Store
	head  string // path of the head checkpoint file
	now   func() time.Time
	actor string
	mu    sync.Mutex
}

// New returns the log over store, checkpointing its head in headFile.
func New(store Store, headFile, actor string, now func() time.Time) *Log {
	return &Log{store: store, head: headFile, actor: actor, now: now}
}

// HeadFile is where the head of a log in data directory dir is kept.
func HeadFile(dir string) string { return filepath.Join(dir, "audit-head.json") }

// Append adds an event at the end of the chain.
func (l *Log) Append(ctx context.Context, event, subject, detail string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; attempt < 20; attempt++ {
		last, ok, err := l.store.LastAudit(ctx)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		e := Entry{Seq: 1, At: l.now(), Event: event, Subject: subject, Detail: detail, Actor: l.actor, Prev: make([]byte, 32)}
		if ok {
			e.Seq, e.Prev = last.Seq+1, last.Hash
		}
		e.Hash = e.Sum()
		err = l.store.InsertAudit(ctx, e)
		if errors.Is(err, ErrConflict) {
			continue // another process appended first
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return l.writeHead(e)
	}
	return fmt.Errorf("audit: could not append after 20 attempts: %w", ErrConflict)
}

type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// writeHead checkpoints e as the head, unless the file already names a
// later one (another process appended since).
func (l *Log) writeHead(e Entry) error {
	if cur, err := readHead(l.head); err == nil && cur.Seq >= e.Seq {
		return nil
	}
	b, _ := json.Marshal(head{Seq: e.Seq, Hash: hex.EncodeToString(e.Hash)})
	tmp := l.head + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	if err := os.Rename(tmp, l.head); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return nil
}

func readHead(path string) (head, error) {
	var h head
	b, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("audit head %s: %w", path, err)
	}
	return h, nil
}

// Problem is the first entry that does not hold, and why.
type Problem struct {
	Seq    int64
	Reason string
}

func (p *Problem) Error() string { return fmt.Sprintf("audit entry %d: %s", p.Seq, p.Reason) }

// Verify walks the whole chain and checks every entry's hash, its link to
// the one before, that sequence numbers run without a gap from 1, and that
// the head file names the last entry. It returns the number of entries
// and, if the log was tampered with, a *Problem naming the first bad one.
func Verify(ctx context.Context, store Store, headFile string) (int64, error) {
	prev := make([]byte, 32)
	var n, seq int64
	for {
		batch, err := store.AuditRange(ctx, seq, 1000)
		if err != nil {
			return n, err
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			switch {
			case e.Seq != seq+1:
				return n, &Problem{Seq: seq + 1, Reason: fmt.Sprintf("missing (the next entry is %d): removed", e.Seq)}
			case string(e.Prev) != string(prev):
				return n, &Problem{Seq: e.Seq, Reason: "does not follow the entry before it: inserted, removed or reordered"}
			case string(e.Sum()) != string(e.Hash):
				return n, &Problem{Seq: e.Seq, Reason: "its content does not match its hash: edited"}
			}
			prev, seq = e.Hash, e.Seq
			n++
		}
	}
	h, err := readHead(headFile)
	switch {
	case errors.Is(err, os.ErrNotExist) && n == 0:
		return 0, nil
	case errors.Is(err, os.ErrNotExist):
		return n, &Problem{Seq: seq, Reason: "the head file " + headFile + " is missing"}
	case err != nil:
		return n, err
	case h.Seq > seq:
		return n, &Problem{Seq: seq + 1, Reason: fmt.Sprintf("the head file names entry %d: entries after %d were removed", h.Seq, seq)}
	case h.Seq < seq:
		return n, &Problem{Seq: h.Seq + 1, Reason: fmt.Sprintf("entries after %d are not in the head file: appended without it (or a process stopped between writing the entry and the head)", h.Seq)}
	case h.Hash != hex.EncodeToString(prev):
		return n, &Problem{Seq: seq, Reason: "the chain's last hash differs from the head file's: the chain was rewritten"}
	}
	return n, nil
}

// Entries returns up to limit entries after seq, in order.
func (l *Log) Entries(ctx context.Context, afterSeq int64, limit int) ([]Entry, error) {
	return l.store.AuditRange(ctx, afterSeq, limit)
}
