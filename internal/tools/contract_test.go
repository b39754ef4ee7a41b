package tools_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/tools/runnertest"
)

// TestRunnerContract: the synchronous Router meets tools.Runner's contract.
func TestRunnerContract(t *testing.T) {
	runnertest.Run(t, func(t *testing.T, cfgs []tools.Config) tools.Runner {
		r, err := tools.New(cfgs, slog.New(slog.DiscardHandler), func(string, tools.Outcome, time.Duration) {})
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}
