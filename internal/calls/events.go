package calls

import (
	"context"
	"sync"
	"time"
)

// EventWriter appends timeline events off the request path: Add queues an
// event without waiting, and one goroutine writes what has queued in one
// transaction (group commit), in the order added. The timeline is
// voicegate's own observation of a call, so a write that fails is reported
// (OnError) and not retried, and an event that finds the queue full is
// dropped and reported; neither ever holds up a webhook. Close writes what
// is queued and stops.
type EventWriter struct {
	store   Store
	onError func(err error, dropped int)
	ch      chan item
	wg      sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// item is an event, or a flush marker (done set).
type item struct {
	ev   CallEvent
	done chan struct{}
}

// Event writer bounds: the queue, and the most events in one transaction.
const (
	eventQueue   = 8192
	eventBatch   = 512
	eventTimeout = 5 * time.Second
)

// NewEventWriter starts the writer. onError is told about every failed
// batch and every dropped event (count).
func NewEventWriter(s Store, onError func(err error, dropped int)) *EventWriter {
	w := &EventWriter{store: s, onError: onError, ch: make(chan item, eventQueue)}
	w.wg.Go(w.run)
	return w
}

// ErrQueueFull is given to OnError for an event dropped because the queue
// was full.
var ErrQueueFull = errorString("timeline event queue full")

type errorString string

func (e errorString) Error() string { return string(e) }

// Add queues an event of call id; it never blocks.
func (w *EventWriter) Add(id string, e Event) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return
	}
	select {
	case w.ch <- item{ev: CallEvent{CallID: id, Event: e}}:
	default:
		w.onError(ErrQueueFull, 1)
	}
}

// Flush waits until every event added before it is written (or failed),
// or ctx ends.
func (w *EventWriter) Flush(ctx context.Context) error {
	done := make(chan struct{})
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return nil
	}
	select {
	case w.ch <- item{done: done}:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *EventWriter) run() {
	batch := make([]CallEvent, 0, eventBatch)
	var flushes []chan struct{}
	for it := range w.ch {
		batch, flushes = add(batch, flushes, it)
	drain:
		for len(batch) < eventBatch {
			select {
			case it, ok := <-w.ch:
				if !ok {
					break drain
				}
				batch, flushes = add(batch, flushes, it)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			if err := w.store.AddEvents(ctx, batch); err != nil {
				w.onError(err, len(batch))
			}
			cancel()
		}
		for _, f := range flushes {
			close(f)
		}
		batch, flushes = batch[:0], flushes[:0]
	}
}

func add(batch []CallEvent, flushes []chan struct{}, it item) ([]CallEvent, []chan struct{}) {
	if it.done != nil {
		return batch, append(flushes, it.done)
	}
	return append(batch, it.ev), flushes
}

// Close writes the queued events and stops the writer.
func (w *EventWriter) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.ch)
	w.mu.Unlock()
	w.wg.Wait()
}
