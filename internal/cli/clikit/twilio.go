package clikit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/twilio"
	"go.yaml.in/yaml/v3"
)

// Twilio is what a client command (simulate, voicegate-bench) needs to play
// Twilio's part against a server: the server's twilio section, the auth
// token it signs with and the number it calls.
type Twilio struct {
	// Config is the twilio section, validated as serve validates it (its
	// opening hours compiled).
	Config twilio.Config
	// Token is the first of twilio.auth_tokens not past its not_after.
	Token string
	// Number is the called number (To).
	Number string
}

// LoadTwilio reads the twilio section of the voicegate config at path —
// only it and server (whose trusted_proxies the section's validation
// reads), expanded and validated as serve does them: the credentials and
// tools are not read, so their variables need not be set where the client
// runs. number is the called number; empty picks the first of
// twilio.numbers in sort order. A section that is off, or without
// public_base_url (the URL every request is signed for), is an error.
func LoadTwilio(path, number string, getenv func(string) string, now time.Time) (Twilio, error) {
	cfg, err := config.Load(path, config.Options{Getenv: getenv, Now: func() time.Time { return now },
		ReadFile: func(p string) ([]byte, error) {
			if p != path {
				return nil, fmt.Errorf("%s: only the twilio section of %s is read", p, path)
			}
			return readKeeping(p, "twilio", "server")
		},
		// The credentials were left out with the rest: only the
		// twilio section is used.
		Dev: true})
	if err != nil {
		return Twilio{}, err
	}
	c := cfg.Twilio
	if !c.Enabled() {
		return Twilio{}, fmt.Errorf("%s has no twilio section (voice_path, status_path, public_base_url, auth_tokens)", path)
	}
	if c.PublicBaseURL == "" {
		return Twilio{}, errors.New("twilio.public_base_url is not set (the public URL comes from a trusted proxy's headers): requests are signed for public_base_url, so set it in the file given")
	}
	t := Twilio{Config: c, Number: number}
	for _, tok := range c.AuthTokens {
		if tok.NotAfter.IsZero() || now.Before(tok.NotAfter) {
			t.Token = tok.Value
			break
		}
	}
	if t.Number == "" {
		nums := make([]string, 0, len(c.Numbers))
		for n := range c.Numbers {
			nums = append(nums, n)
		}
		sort.Strings(nums)
		if len(nums) == 0 {
			return Twilio{}, &UsageError{Msg: "twilio.numbers is empty: give --twilio-number, the number to call"}
		}
		t.Number = nums[0]
	}
	return t, nil
}

// readKeeping reads the YAML file at path and returns it with only the
// given top-level keys: the rest of the file (and the environment
// variables it names) is not looked at.
func readKeeping(path string, keys ...string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		// Given whole, the configuration's own parser reports it.
		return raw, nil
	}
	doc := root.Content[0]
	var kept []*yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if slices.Contains(keys, doc.Content[i].Value) {
			v := doc.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				a := *v.Alias
				a.Anchor = ""
				v = &a
			}
			kept = append(kept, doc.Content[i], v)
		}
	}
	doc.Content = kept
	return yaml.Marshal(&root)
}
