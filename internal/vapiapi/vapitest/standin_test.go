package vapitest_test

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// The stand-in as a server of its own, for running the real binary
// against it (the README's "Vapi as code" output is made so):
//
//	go test ./internal/vapiapi/vapitest -run TestServeStandIn -standin.url /tmp/url -standin.key sk-demo-... &
//	# vapi.api.base_url: $(cat /tmp/url), vapi.api.key: the key
var (
	standinURL = flag.String("standin.url", "", "serve the stand-in and write its base URL to this file (opt-in)")
	standinKey = flag.String("standin.key", "sk-demo-7c1f9a2e4b6d8f0a", "the API key the stand-in requires")
	standinFor = flag.Duration("standin.for", 15*time.Minute, "how long the stand-in serves")
)

func TestServeStandIn(t *testing.T) {
	if *standinURL == "" {
		t.Skip("opt-in: -standin.url FILE")
	}
	s := vapitest.NewWithKey(t, *standinKey)
	if err := os.WriteFile(*standinURL, []byte(s.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("Vapi's API stands in at %s until %s", s.URL, time.Now().Add(*standinFor).Format(time.TimeOnly))
	select {
	case <-time.After(*standinFor):
	case <-t.Context().Done():
	}
}
