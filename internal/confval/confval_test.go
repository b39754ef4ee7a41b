package confval

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationDays(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2s", 2 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0d", 0, true},
		{"30", 0, false},
		{"d", 0, false},
		{"1d-2h", 0, false},
		{"1dx", 0, false},
		{"99999999999999999999d", 0, false},
		{"40000d", 0, false},
	} {
		var d Duration
		err := yaml.Unmarshal([]byte("v: "+c.in), &struct {
			V *Duration `yaml:"v"`
		}{&d})
		if (err == nil) != c.ok || (c.ok && d.D() != c.want) {
			t.Errorf("%q: %v %v, want %v ok=%v", c.in, d.D(), err, c.want, c.ok)
		}
	}
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30d", 36 * time.Hour: "36h0m0s", 2 * time.Second: "2s"} {
		if got, _ := Duration(d).MarshalYAML(); got != want {
			t.Errorf("%v marshals as %v, want %s", d, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/webhook/vapi": true, "/twilio/voice": true, "/a-b_c.d": true,
		"": false, "/": false, "/twilio/": false, "twilio": false, "/tw//voice": false, "/tw/./voice": false,
		"/tw/../voice": false, "/tw\tvoice": false, "/tw voice": false, "/a?b": false, "/a#b": false, "/{x}": false, "/a%20": false, "/a\\b": false,
	} {
		if got := CleanPath(p); got != want {
			t.Errorf("CleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}
