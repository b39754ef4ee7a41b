package session_test

import (
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/session/trackertest"
)

// TestTrackerContract: the in-memory Table meets session.Tracker's contract.
func TestTrackerContract(t *testing.T) {
	trackertest.Run(t, func(t *testing.T, capacity int) session.Tracker {
		return session.New(time.Hour, capacity, time.Now)
	})
}
