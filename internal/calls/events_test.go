package calls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// eventStore records AddEvents batches; blocked holds writes until closed.
type eventStore struct {
	fakeStore
	mu      sync.Mutex
	batches [][]CallEvent
	blocked chan struct{}
	err     error
}

func (s *eventStore) AddEvents(ctx context.Context, evs []CallEvent) error {
	if s.blocked != nil {
		<-s.blocked
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.batches = append(s.batches, append([]CallEvent(nil), evs...))
	return nil
}

func (s *eventStore) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		for _, e := range b {
			out = append(out, e.CallID+":"+e.Detail)
		}
	}
	return out
}

// TestEventWriterOrderFlushAndClose: events are written in the order
// added, a Flush returns once what came before it is written, and Close
// writes what is queued.
func TestEventWriterOrderFlushAndClose(t *testing.T) {
	s := &eventStore{}
	var failures int
	w := NewEventWriter(s, func(error, int) { failures++ })
	for i := range 1000 {
		w.Add(fmt.Sprint("c", i%3), Event{At: time.UnixMilli(int64(i)), Kind: "k", Detail: fmt.Sprint(i)})
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.all()
	if len(got) != 1000 || got[0] != "c0:0" || got[999] != "c0:999" {
		t.Fatalf("%d events written, first %v", len(got), got[:min(3, len(got))])
	}
	for i, g := range got {
		if want := fmt.Sprintf("c%d:%d", i%3, i); g != want {
			t.Fatalf("event %d is %s, want %s (order)", i, g, want)
		}
	}
	if len(s.batches) >= 1000 {
		t.Fatalf("%d batches for 1000 events: no group commit", len(s.batches))
	}
	w.Add("c9", Event{Detail: "last"})
	w.Close()
	if got := s.all(); got[len(got)-1] != "c9:last" || failures != 0 {
		t.Fatalf("Close did not write the queued event: %v (failures %d)", got[len(got)-1], failures)
	}
	w.Add("c9", Event{Detail: "after close"}) // dropped quietly, no panic
	w.Close()
}

// TestEventWriterFailuresAreReported: a failed batch and events that find
// the queue full are reported with their count; Add never blocks.
func TestEventWriterFailuresAreReported(t *testing.T) {
	s := &eventStore{blocked: make(chan struct{}), err: errors.New("disk full")}
	var mu sync.Mutex
	dropped, failed := 0, 0
	w := NewEventWriter(s, func(err error, n int) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, ErrQueueFull) {
			dropped += n
		} else {
			failed += n
		}
	})
	start := time.Now()
	for i := range eventQueue + 1000 {
		w.Add("c", Event{Detail: fmt.Sprint(i)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Add blocked: %v", d)
	}
	close(s.blocked)
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if dropped < 1000-eventBatch || dropped+failed != eventQueue+1000 {
		t.Fatalf("dropped %d, failed %d, of %d", dropped, failed, eventQueue+1000)
	}
}
