package calls

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeStore is a Store whose writes return writeErr (or the context's error
// when the context is done) and whose Ping returns pingErr.
type fakeStore struct {
	writeErr, pingErr error
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) write(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.writeErr
}
func (f *fakeStore) CreateCall(ctx context.Context, _ Record) error { return f.write(ctx) }
func (f *fakeStore) RecordStatus(ctx context.Context, _ string, _ StatusChange) error {
	return f.write(ctx)
}
func (f *fakeStore) EndCall(ctx context.Context, _ string, _ End) error { return f.write(ctx) }
func (f *fakeStore) AddEvents(ctx context.Context, _ []CallEvent) error { return f.write(ctx) }
func (f *fakeStore) Events(context.Context, string) ([]Event, error)    { return nil, nil }
func (f *fakeStore) Call(context.Context, string) (Record, []StatusChange, error) {
	return Record{}, nil, ErrNotFound
}
func (f *fakeStore) List(ctx context.Context, _ ListFilter) ([]Record, error) {
	return nil, f.write(ctx)
}
func (f *fakeStore) Ping(context.Context) error { return f.pingErr }
func (f *fakeStore) Close() error               { return nil }

var errDiskFull = errors.New("database or disk is full")

func TestMonitoredReadiness(t *testing.T) {
	const window = 30 * time.Second
	type step struct {
		advance time.Duration
		// write is "ok", "fail", "cancelled" (the caller gave up, then the
		// write failed), "deadline" (its deadline passed), "read" (a read
		// that fails), "list" (a list that fails), "list-ok" (one that
		// succeeds), or "" for none.
		write     string
		pingErr   error
		wantReady bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ready without writes", []step{{wantReady: true}}},
		{"a failed write", []step{{write: "fail"}}},
		{"a successful write after a failure", []step{{write: "fail"}, {write: "ok", wantReady: true}}},
		{"a failure after a success", []step{{write: "ok", wantReady: true}, {write: "fail"}}},
		{"the window passes", []step{{write: "fail"}, {advance: window - time.Nanosecond}, {advance: time.Nanosecond, wantReady: true}}},
		{"each failure restarts the window", []step{{write: "fail"}, {advance: 20 * time.Second, write: "fail"}, {advance: 20 * time.Second}, {advance: 10 * time.Second, wantReady: true}}},
		{"a failure after the window passed", []step{{write: "fail"}, {advance: window, wantReady: true}, {write: "fail"}}},
		{"a write its caller cancelled", []step{{write: "cancelled", wantReady: true}}},
		{"a write past its caller's deadline", []step{{write: "deadline", wantReady: true}}},
		{"a cancelled write does not clear a failure", []step{{write: "fail"}, {write: "cancelled"}}},
		{"reads do not count", []step{{write: "fail"}, {write: "read"}}},
		{"a failed list does not count", []step{{write: "ok", wantReady: true}, {write: "list", wantReady: true}}},
		{"a successful list does not clear a failure", []step{{write: "fail"}, {write: "list-ok"}}},
		{"ping fails", []step{{pingErr: errors.New("unreachable")}}},
		{"ping fails after a success", []step{{write: "ok", pingErr: errors.New("unreachable")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.UnixMilli(1_795_000_000_000)
			fs := &fakeStore{}
			m := Monitored(fs, func() time.Time { return now }, window)
			for i, s := range tc.steps {
				now = now.Add(s.advance)
				fs.pingErr = s.pingErr
				ctx := context.Background()
				var err error
				switch s.write {
				case "ok":
					fs.writeErr = nil
					err = m.CreateCall(ctx, Record{ID: "c"})
				case "fail":
					fs.writeErr = errDiskFull
					err = m.RecordStatus(ctx, "c", StatusChange{Status: "ringing"})
					if !errors.Is(err, errDiskFull) {
						t.Fatalf("step %d: write error %v, want the store's", i, err)
					}
				case "cancelled", "deadline":
					fs.writeErr = errDiskFull
					var cancel context.CancelFunc
					if s.write == "cancelled" {
						ctx, cancel = context.WithCancel(ctx)
					} else {
						ctx, cancel = context.WithDeadline(ctx, now.Add(-time.Second))
					}
					cancel()
					err = m.EndCall(ctx, "c", End{})
					if err == nil {
						t.Fatalf("step %d: write with a done context succeeded", i)
					}
				case "read":
					fs.writeErr = errDiskFull
					m.Call(ctx, "c")
				case "list":
					fs.writeErr = errDiskFull
					if _, err := m.List(ctx, ListFilter{}); !errors.Is(err, errDiskFull) {
						t.Fatalf("step %d: List error %v, want the store's", i, err)
					}
				case "list-ok":
					fs.writeErr = nil
					if _, err := m.List(ctx, ListFilter{}); err != nil {
						t.Fatalf("step %d: List: %v", i, err)
					}
					fs.writeErr = errDiskFull
				}
				err = m.Ready(context.Background())
				if got := err == nil; got != s.wantReady {
					t.Fatalf("step %d (%+v): Ready() = %v, want ready %v", i, s, err, s.wantReady)
				}
				if err != nil && s.pingErr == nil && (!errors.Is(err, ErrWritesFailing) || !errors.Is(err, errDiskFull)) {
					t.Fatalf("step %d: Ready() = %v, want ErrWritesFailing wrapping the write's error", i, err)
				}
			}
		})
	}
}

// Concurrent writes and probes (run with -race); the last outcome wins once
// the writes are over.
func TestMonitoredConcurrent(t *testing.T) {
	fs := &fakeStore{}
	failing := &fakeStore{writeErr: errDiskFull}
	ok := Monitored(fs, time.Now, time.Hour)
	bad := Monitored(failing, time.Now, time.Hour)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				ok.CreateCall(ctx, Record{})
				bad.CreateCall(ctx, Record{})
				if i%100 == w {
					ok.Ready(ctx)
					bad.Ready(ctx)
				}
			}
		}()
	}
	wg.Wait()
	if err := ok.Ready(ctx); err != nil {
		t.Errorf("store whose writes all succeeded: %v", err)
	}
	if err := bad.Ready(ctx); !errors.Is(err, ErrWritesFailing) {
		t.Errorf("store whose writes all failed: %v", err)
	}
	if ok.s != Store(fs) {
		t.Error("the monitor does not wrap the store it was given")
	}
}

// The wrapper's own cost on a write, against a store that does nothing.
func BenchmarkMonitoredOverhead(b *testing.B) {
	ctx := context.Background()
	r := Record{ID: "c"}
	for _, bc := range []struct {
		name string
		s    Store
	}{
		{"direct", &fakeStore{}},
		{"monitored", Monitored(&fakeStore{}, time.Now, time.Minute)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.s.CreateCall(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
