package sqlite

import (
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the embedded store's configuration (the "storage" section of
// voicegate's configuration). Start from DefaultConfig.
type Config struct {
	// WALLimitBytes bounds the write-ahead log (voicegate.db-wal). The
	// background checkpoint copies the log into the database without
	// blocking writers; under writes that never pause that copy never
	// catches up and the log never restarts, so once the file is larger
	// than this the checkpoint also restarts the log and empties the file,
	// holding writers back meanwhile. The file can pass the limit by what
	// writers add during one interval and one checkpoint. It is also
	// SQLite's journal_size_limit: a log that restarts on its own is cut
	// back to this size.
	WALLimitBytes int64 `yaml:"wal_limit_bytes"`
	// CheckpointInterval is how often the background checkpoint runs.
	CheckpointInterval confval.Duration `yaml:"checkpoint_interval"`

	// busyTimeout is how long a statement waits for a lock held by another
	// connection (another process, in practice) before failing; zero means
	// defaultBusyTimeout. Tests shorten it.
	busyTimeout time.Duration
}

const (
	defaultBusyTimeout = 5 * time.Second

	minWALLimit           = 1 << 20
	maxWALLimit           = 4 << 30
	minCheckpointInterval = 10 * time.Millisecond
	maxCheckpointInterval = time.Minute
)

// DefaultConfig returns the defaults: a 64 MiB log, checkpointed every
// 100 ms. A short interval keeps each checkpoint small: under writes at full
// speed it both bounds the log more tightly and costs the writers less than
// checkpointing every second (BENCHMARKS.md); an idle database's checkpoint
// finds nothing to do.
func DefaultConfig() Config {
	return Config{WALLimitBytes: 64 << 20, CheckpointInterval: confval.Duration(100 * time.Millisecond)}
}

// Validate returns one human-readable problem per invalid field, each
// starting with the field's YAML key relative to the storage section
// ("wal_limit_bytes: …"); none for a valid configuration.
func (c Config) Validate() []string {
	var probs []string
	if c.WALLimitBytes < minWALLimit || c.WALLimitBytes > maxWALLimit {
		probs = append(probs, fmt.Sprintf("wal_limit_bytes: must be between 1 MiB (%d) and 4 GiB (%d), got %d", int64(minWALLimit), int64(maxWALLimit), c.WALLimitBytes))
	}
	if ci := c.CheckpointInterval.D(); ci < minCheckpointInterval || ci > maxCheckpointInterval {
		probs = append(probs, fmt.Sprintf("checkpoint_interval: must be between %s and %s, got %s", minCheckpointInterval, maxCheckpointInterval, ci))
	}
	return probs
}
