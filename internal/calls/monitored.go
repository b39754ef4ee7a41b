package calls

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrWritesFailing is wrapped by MonitoredStore.Ready's error while the
// store's writes fail.
var ErrWritesFailing = errors.New("store writes are failing")

// MonitoredStore is a Store that remembers the outcome of its writes, so
// that readiness can tell the truth about a store that answers pings but
// cannot write: a full disk, damaged pages, a lock held by another process.
// Every write would fail (and the sender be told to retry) while a probe
// that only pings reported the instance ready. It wraps any backend.
//
// The write path adds one atomic load to a successful write; a failed write
// also allocates its record. Safe for concurrent use.
type MonitoredStore struct {
	s      Store
	now    func() time.Time
	window time.Duration
	// failed is the most recent failed write, while no write has
	// succeeded since; nil otherwise.
	failed atomic.Pointer[writeFailure]
}

type writeFailure struct {
	at  time.Time
	err error
}

var _ Store = (*MonitoredStore)(nil)

// Monitored wraps s. Ready fails while the most recent write failed less
// than window ago (by now) and no write has succeeded since.
func Monitored(s Store, now func() time.Time, window time.Duration) *MonitoredStore {
	return &MonitoredStore{s: s, now: now, window: window}
}

// Ready returns nil when the store answers Ping and its writes are not
// failing. It returns an error wrapping ErrWritesFailing (and the last
// write's error) while the most recent write failed less than the window
// ago and none has succeeded since, and Ping's error when Ping fails. It
// recovers on its own: after a successful write, or once the window has
// passed since the last failure (a store that takes no writes is then
// judged by Ping alone, and the next failed write makes it unready again).
func (m *MonitoredStore) Ready(ctx context.Context) error {
	if f := m.failed.Load(); f != nil {
		if age := m.now().Sub(f.at); age < m.window {
			return fmt.Errorf("%w: last failure %s ago: %w", ErrWritesFailing, age.Round(time.Millisecond), f.err)
		}
	}
	return m.s.Ping(ctx)
}

// observe records a write's outcome and returns its error. A write that
// failed after its caller gave up (ctx cancelled or past its deadline) says
// nothing about the store and is not recorded.
func (m *MonitoredStore) observe(ctx context.Context, err error) error {
	if err == nil {
		// One load, and a write only after a failure. The CAS keeps a
		// failure recorded meanwhile by another write.
		if f := m.failed.Load(); f != nil {
			m.failed.CompareAndSwap(f, nil)
		}
		return nil
	}
	if ctx.Err() == nil {
		m.failed.Store(&writeFailure{at: m.now(), err: err})
	}
	return err
}

// CreateCall implements Store.
func (m *MonitoredStore) CreateCall(ctx context.Context, r Record) error {
	return m.observe(ctx, m.s.CreateCall(ctx, r))
}

// RecordStatus implements Store.
func (m *MonitoredStore) RecordStatus(ctx context.Context, callID string, c StatusChange) error {
	return m.observe(ctx, m.s.RecordStatus(ctx, callID, c))
}

// EndCall implements Store.
func (m *MonitoredStore) EndCall(ctx context.Context, callID string, e End) error {
	return m.observe(ctx, m.s.EndCall(ctx, callID, e))
}

// AddEvents implements Store.
func (m *MonitoredStore) AddEvents(ctx context.Context, evs []CallEvent) error {
	return m.observe(ctx, m.s.AddEvents(ctx, evs))
}

// Events implements Reader.
func (m *MonitoredStore) Events(ctx context.Context, id string) ([]Event, error) {
	return m.s.Events(ctx, id)
}

// Call implements Store; reads are not monitored.
func (m *MonitoredStore) Call(ctx context.Context, id string) (Record, []StatusChange, error) {
	return m.s.Call(ctx, id)
}

// List implements Store; reads are not monitored.
func (m *MonitoredStore) List(ctx context.Context, f ListFilter) ([]Record, error) {
	return m.s.List(ctx, f)
}

// Ping implements Store: the wrapped store's Ping, without the write
// history (Ready includes it).
func (m *MonitoredStore) Ping(ctx context.Context) error { return m.s.Ping(ctx) }

// Close implements Store.
func (m *MonitoredStore) Close() error { return m.s.Close() }
