package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() { Run(ctx, 5*time.Millisecond, func() { n.Add(1) }); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("f not called repeatedly")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	after := n.Load()
	time.Sleep(20 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("f called after the context ended")
	}
}
