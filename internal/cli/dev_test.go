package cli

import (
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
)

func TestDevConfigValidWithoutCredentialCheck(t *testing.T) {
	c := devConfig(confval.NewSecret(), "127.0.0.1:0", t.TempDir())
	if err := c.Check(config.Options{Dev: true}); err != nil {
		t.Fatal(err)
	}
	if len(c.Vapi.Auth) != 1 || len(c.Vapi.Auth[0].Secrets[0].Value) != 64 {
		t.Fatalf("dev must still authenticate with a strong generated secret: %+v", c.Vapi.Auth)
	}
	if confval.NewSecret() == confval.NewSecret() {
		t.Fatal("secrets must be random")
	}
}
