package records

import (
	"fmt"
	"path/filepath"
)

// Config is the "records" section: where the keyring that seals the
// records is kept.
type Config struct {
	// KeyringFile is the keyring's file, created with mode 0600 on first
	// start (default: keyring.json in data_dir). Back it up apart from
	// the database: without it no record can be read.
	KeyringFile string `yaml:"keyring_file"`
	// KeyringEnv names an environment variable holding the keyring (the
	// file's JSON) instead, for replicas that share one; it cannot be
	// rotated by voicegate.
	KeyringEnv string `yaml:"keyring_env"`
	// KeyringJSON is KeyringEnv's value, read by Resolve.
	KeyringJSON string `yaml:"-"`
}

// Resolve reads the keyring variable, if one is named.
func (c *Config) Resolve(getenv func(string) string) []string {
	if c.KeyringEnv == "" {
		return nil
	}
	if c.KeyringJSON = getenv(c.KeyringEnv); c.KeyringJSON == "" {
		return []string{fmt.Sprintf("keyring_env: environment variable %s is not set", c.KeyringEnv)}
	}
	return nil
}

// Validate returns the section's problems.
func (c Config) Validate() []string {
	if c.KeyringFile != "" && c.KeyringEnv != "" {
		return []string{": keyring_file and keyring_env are both set: choose one"}
	}
	return nil
}

// KeyringPath is the keyring file's path for data directory dir.
func (c Config) KeyringPath(dir string) string {
	if c.KeyringFile != "" {
		return c.KeyringFile
	}
	return filepath.Join(dir, "keyring.json")
}
