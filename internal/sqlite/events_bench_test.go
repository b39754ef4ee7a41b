package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
)

// BenchmarkAddEvents: a batch of 64 timeline events, per event.
func BenchmarkAddEvents(b *testing.B) {
	db, err := Open(context.Background(), b.TempDir(), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	evs := make([]calls.CallEvent, 64)
	for i := range evs {
		evs[i] = calls.CallEvent{CallID: fmt.Sprint("call-", i%8), Event: calls.Event{At: time.Now(), Kind: "bargein", Detail: "none: already interrupted in this turn"}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := db.AddEvents(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
