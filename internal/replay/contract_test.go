package replay_test

import (
	"testing"

	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/replay/replaytest"
)

// TestGuardContract: the in-memory Cache meets replay.Guard's contract.
func TestGuardContract(t *testing.T) {
	replaytest.Run(t, func(t *testing.T, c replaytest.Config) replay.Guard {
		cache := replay.New(c.Window, c.Capacity)
		cache.SetGrace(c.Grace)
		return cache
	})
}
