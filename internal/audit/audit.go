// Package audit provides the tamper-evident audit log: security-relevant
// events (key rotations, record reads and purges, configuration reloads,
// authentication failures) appended to a chain in the database, each
// entry's HMAC-SHA256 covering its fields and the previous entry's, keyed
// by a secret kept outside the database (audit.key in data_dir), with the
// chain's head also checkpointed in a file outside the database. Someone
// who can write the database but not data_dir can neither forge an entry
// nor rewrite the chain; an append first checks that the chain still ends
// where the head file says, so tampering is never papered over. Verify
// names the first entry that does not hold.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/lockfile"
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

// Sum is the entry's MAC under key: HMAC-SHA256 over its fields, each
// length-prefixed, and the previous entry's.
func (e Entry) Sum(key []byte) []byte {
	h := hmac.New(sha256.New, key)
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

// Log appends to the chain and keeps its head: in a file of data_dir (New),
// or in the database for a chain the replicas share (NewShared).
type Log struct {
	store  Store
	shared SharedStore // set: a shared chain, its head in the database
	dir    string
	key    []byte
	now    func() time.Time
	actor  string
	mu     sync.Mutex
}

// Files of the log in a data directory.
const (
	headName = "audit-head.json"
	keyName  = "audit.key"
)

// ErrTampered is a chain that no longer ends where its head file says.
var ErrTampered = errors.New("audit log tampered with")

// New returns the log over store, its key and head kept in data directory
// dir (the key created, mode 0600, on first use).
func New(store Store, dir, actor string, now func() time.Time) (*Log, error) {
	key, err := loadKey(dir, true)
	if err != nil {
		return nil, err
	}
	return &Log{store: store, dir: dir, key: key, actor: actor, now: now}, nil
}

func loadKey(dir string, create bool) ([]byte, error) {
	path := filepath.Join(dir, keyName)
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) != 32 {
			return nil, fmt.Errorf("audit key %s is damaged", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	unlock, err := lockfile.Lock(path, 10*time.Second, time.Minute)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil { // another process made it first
		return loadKey(dir, false)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := writeFile(path, []byte(hex.EncodeToString(key)+"\n")); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return key, nil
}

// writeFile replaces path atomically (a temporary file, mode 0600, renamed).
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Append adds an event at the end of the chain, after checking that the
// chain still ends where the head file says (ErrTampered otherwise: the
// event is not appended, so tampering is never covered by a new head).
// Appends from several processes on one host are serialised by a lock
// file beside the head.
func (l *Log) Append(ctx context.Context, event, subject, detail string) error {
	if l.shared != nil {
		return l.appendShared(ctx, event, subject, detail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	head := filepath.Join(l.dir, headName)
	unlock, err := lockfile.Lock(head, 10*time.Second, time.Minute)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer unlock()
	last, ok, err := l.store.LastAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := l.checkHead(ctx, head, last, ok); err != nil {
		return err
	}
	for attempt := 0; attempt < 20; attempt++ {
		e := Entry{Seq: 1, At: l.now(), Event: event, Subject: subject, Detail: detail, Actor: l.actor, Prev: make([]byte, 32)}
		if ok {
			e.Seq, e.Prev = last.Seq+1, last.Hash
		}
		e.Hash = e.Sum(l.key)
		err = l.store.InsertAudit(ctx, e)
		if errors.Is(err, ErrConflict) { // another host appended first
			if last, ok, err = l.store.LastAudit(ctx); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		b, _ := json.Marshal(headRecord{Seq: e.Seq, Hash: hex.EncodeToString(e.Hash)})
		if err := writeFile(head, append(b, '\n')); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		return nil
	}
	return fmt.Errorf("audit: could not append after 20 attempts: %w", ErrConflict)
}

// checkHead: the entry the head file names must be in the chain with its
// hash, and every entry after it must follow and verify.
func (l *Log) checkHead(ctx context.Context, head string, last Entry, ok bool) error {
	h, err := readHead(head)
	if errors.Is(err, os.ErrNotExist) {
		if ok {
			return fmt.Errorf("%w: the chain has %d entries but the head file %s is missing", ErrTampered, last.Seq, head)
		}
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := l.store.AuditRange(ctx, h.Seq-1, 1000)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(entries) == 0 || entries[0].Seq != h.Seq || hex.EncodeToString(entries[0].Hash) != h.Hash || !hmac.Equal(entries[0].Sum(l.key), entries[0].Hash) {
		return fmt.Errorf("%w: entry %d is not the one the head file names", ErrTampered, h.Seq)
	}
	prev := entries[0].Hash
	for _, e := range entries[1:] {
		if string(e.Prev) != string(prev) || !hmac.Equal(e.Sum(l.key), e.Hash) {
			return fmt.Errorf("%w: entry %d after the head does not verify", ErrTampered, e.Seq)
		}
		prev = e.Hash
	}
	return nil
}

// Entries returns up to limit entries after seq, in order.
func (l *Log) Entries(ctx context.Context, afterSeq int64, limit int) ([]Entry, error) {
	if l.shared != nil {
		return l.shared.AuditRange(ctx, afterSeq, limit)
	}
	return l.store.AuditRange(ctx, afterSeq, limit)
}

type headRecord struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

func readHead(path string) (headRecord, error) {
	var h headRecord
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
//
// It takes no lock, so that a long verification never holds up a running
// voicegate's appends; entries appended while it runs are read too. An
// append writes its entry, then the head file: a head that names an entry
// before the last one is looked at again for up to a second before it is
// reported (a process that stopped between the two writes).
func Verify(ctx context.Context, store Store, dir string) (int64, error) {
	headFile := filepath.Join(dir, headName)
	key, err := loadKey(dir, false)
	if errors.Is(err, os.ErrNotExist) {
		key = nil // no key yet: only an empty chain verifies
	} else if err != nil {
		return 0, err
	}
	// The hashes of the entries from the head at the start on: the head
	// read at the end names one of them.
	from := int64(1)
	if h0, err := readHead(headFile); err == nil {
		from = h0.Seq
	}
	hashes := map[int64][]byte{}
	c := newChain()
	var n int64
	walk := func() error {
		return c.walk(ctx, store, func(e Entry) *Problem {
			if key == nil || !hmac.Equal(e.Sum(key), e.Hash) {
				return &Problem{Seq: e.Seq, Reason: "its content does not match its hash: edited"}
			}
			if e.Seq >= from {
				hashes[e.Seq] = e.Hash
			}
			n++
			return nil
		})
	}
	if err := walk(); err != nil {
		return n, err
	}
	var h headRecord
	missing := false
	for attempt := 0; ; attempt++ {
		h, err = readHead(headFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, err
		}
		if missing = err != nil; missing && n == 0 {
			return 0, nil
		}
		if !missing && h.Seq > c.seq {
			// Appended while the chain was read: read on, and look at the
			// head again.
			if err := walk(); err != nil {
				return n, err
			}
			if h.Seq <= c.seq {
				continue
			}
		}
		if (!missing && h.Seq == c.seq) || attempt >= 20 {
			break
		}
		// The head is missing, behind the chain or ahead of it: an append
		// between its two writes, or a process that stopped there, or
		// removed entries. Look again shortly.
		time.Sleep(50 * time.Millisecond)
		if err := walk(); err != nil {
			return n, err
		}
	}
	switch {
	case missing:
		return n, &Problem{Seq: c.seq, Reason: "the head file " + headFile + " is missing"}
	case h.Seq > c.seq:
		return n, &Problem{Seq: c.seq + 1, Reason: fmt.Sprintf("the head file names entry %d: entries after %d were removed", h.Seq, c.seq)}
	case h.Seq < c.seq:
		return n, &Problem{Seq: h.Seq + 1, Reason: fmt.Sprintf("entries after %d are not in the head file: appended without it (or a process stopped between writing the entry and the head)", h.Seq)}
	case h.Hash != hex.EncodeToString(hashes[h.Seq]):
		return n, &Problem{Seq: h.Seq, Reason: "the chain's last hash differs from the head file's: the chain was rewritten"}
	}
	return n, nil
}

// chain reads a chain in order, from where it stopped: each entry must
// follow the one before (no gap, linked to its hash), then pass check.
type chain struct {
	prev []byte
	seq  int64
}

func newChain() *chain { return &chain{prev: make([]byte, 32)} }

func (c *chain) walk(ctx context.Context, store Store, check func(e Entry) *Problem) error {
	for {
		batch, err := store.AuditRange(ctx, c.seq, 1000)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, e := range batch {
			switch {
			case e.Seq != c.seq+1:
				return &Problem{Seq: c.seq + 1, Reason: fmt.Sprintf("missing (the next entry is %d): removed", e.Seq)}
			case string(e.Prev) != string(c.prev):
				return &Problem{Seq: e.Seq, Reason: "does not follow the entry before it: inserted, removed or reordered"}
			}
			if p := check(e); p != nil {
				return p
			}
			c.prev, c.seq = e.Hash, e.Seq
		}
	}
}
