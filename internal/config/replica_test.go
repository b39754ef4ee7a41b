package config

import (
	"errors"
	"strings"
	"testing"
)

const minimalAuth = "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"

// TestReplicaDefaultsToHostname: without replica, the host name names the
// process; the key, or ${VOICEGATE_REPLICA}, overrides it.
func TestReplicaDefaultsToHostname(t *testing.T) {
	host := func() (string, error) { return "gw-host-7", nil }
	c, err := Parse([]byte(minimalAuth), Options{Hostname: host})
	if err != nil || c.Replica != "gw-host-7" {
		t.Fatalf("default replica %q, %v", c.Replica, err)
	}
	c, err = Parse([]byte(minimalAuth+"replica: ${VOICEGATE_REPLICA:-}\n"), Options{Hostname: host,
		Getenv: env(map[string]string{"VOICEGATE_REPLICA": "voicegate-5d8f9c7b6-x2k4p"})})
	if err != nil || c.Replica != "voicegate-5d8f9c7b6-x2k4p" {
		t.Fatalf("replica from the environment %q, %v", c.Replica, err)
	}
	c, err = Parse([]byte(minimalAuth+"replica: ${VOICEGATE_REPLICA:-}\n"), Options{Hostname: host})
	if err != nil || c.Replica != "gw-host-7" {
		t.Fatalf("unset variable with an empty default: %q, %v", c.Replica, err)
	}
}

func TestReplicaRejected(t *testing.T) {
	noHost := func() (string, error) { return "", errors.New("no host name") }
	for _, tc := range []struct {
		name, yaml string
		host       func() (string, error)
		want       string
	}{
		{"no host name", "", noHost, "replica: empty, and the host name is unknown"},
		{"space", "replica: gw 1\n", nil, `replica: "gw 1": want 1 to 128 letters`},
		{"quote", "replica: 'gw\"1'\n", nil, `replica: "gw\"1"`},
		{"newline", "replica: \"gw\\n1\"\n", nil, `replica: "gw\n1"`},
		{"leading dash", "replica: -gw\n", nil, `replica: "-gw"`},
		{"too long", "replica: " + strings.Repeat("a", 129) + "\n", nil, "want 1 to 128"},
		{"invalid host name", "", func() (string, error) { return "my host", nil }, `replica: "my host"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := strings.Join(problems(t, minimalAuth+tc.yaml, Options{Hostname: tc.host}), "\n")
			if !strings.Contains(ps, tc.want) {
				t.Fatalf("problems %q, want %q", ps, tc.want)
			}
		})
	}
}

// TestTracingSection: the section decodes, is off by default, and its
// problems are reported under tracing.*, without a header's value.
func TestTracingSection(t *testing.T) {
	c, err := Parse([]byte(minimalAuth), Options{})
	if err != nil || c.Tracing.Enabled() || c.Tracing.SampleRatio != 1 || c.Tracing.Timeout.D().String() != "5s" {
		t.Fatalf("defaults: %+v %v", c.Tracing, err)
	}
	c, err = Parse([]byte(minimalAuth+"tracing:\n  endpoint: https://otel.example.internal:4318\n  sample_ratio: 0.25\n  headers:\n    authorization: ${OTEL_TOKEN}\n"),
		Options{Getenv: env(map[string]string{"OTEL_TOKEN": "Bearer tok-8f3k2"})})
	if err != nil || !c.Tracing.Enabled() || c.Tracing.SampleRatio != 0.25 || string(c.Tracing.Headers["authorization"]) != "Bearer tok-8f3k2" {
		t.Fatalf("%+v %v", c.Tracing, err)
	}
	ps := strings.Join(problems(t, minimalAuth+"tracing:\n  endpoint: ftp://collector\n  sample_ratio: 2\n  headers:\n    authorization: \"a\\nb tok-8f3k2\"\n", Options{}), "\n")
	for _, want := range []string{"tracing.endpoint: scheme \"ftp\"", "tracing.sample_ratio: 2 is not between 0 and 1", "tracing.headers.authorization: the value holds a line break"} {
		if !strings.Contains(ps, want) {
			t.Errorf("problems %q, want %q", ps, want)
		}
	}
	if strings.Contains(ps, "tok-8f3k2") {
		t.Errorf("a problem quotes the header's value: %q", ps)
	}
	ps = strings.Join(problems(t, minimalAuth+"tracing:\n  endpont: http://c:4318\n", Options{}), "\n")
	if !strings.Contains(ps, `unknown key "endpont"`) {
		t.Errorf("misspelt key: %q", ps)
	}
}
