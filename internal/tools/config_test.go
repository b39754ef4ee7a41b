package tools

import (
	"io/fs"
	"strings"
	"testing"
)

// Resolve does every read through the functions it is given; Validate
// reads nothing and checks the resolved values.
func TestConfigResolveThenValidate(t *testing.T) {
	c := Config{Name: "getX", URL: "http://127.0.0.1:9/x", Headers: map[string]HeaderValue{
		"Authorization": {Env: "API_TOKEN"},
		"X-Tenant":      {File: "/secrets/tenant"},
		"X-Missing":     {Env: "NOT_SET"},
	}, SchemaFile: "/schemas/x.yaml"}
	c.Complete()
	files := map[string]string{"/secrets/tenant": "acme\n", "/schemas/x.yaml": "type: object\nrequired: [date]\n"}
	getenv := func(k string) string { return map[string]string{"API_TOKEN": "Bearer t0k3n"}[k] }
	readFile := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	probs := c.Resolve(getenv, readFile)
	if len(probs) != 1 || !strings.HasPrefix(probs[0], "headers.X-Missing: environment variable NOT_SET is not set") {
		t.Fatalf("resolve problems %q", probs)
	}
	if c.Headers["Authorization"].Value != "Bearer t0k3n" || c.Headers["X-Tenant"].Value != "acme" || c.Compiled == nil {
		t.Fatalf("not resolved: %+v, compiled %v", c.Headers, c.Compiled != nil)
	}
	probs, _ = c.Validate()
	if len(probs) != 0 {
		t.Fatalf("validate problems %q", probs)
	}
	bad := Config{Name: "bad name!", URL: "ftp://x", Method: "TRACE", Headers: map[string]HeaderValue{"Host": {Value: "evil"}}}
	probs, _ = bad.Validate()
	got := strings.Join(probs, "\n")
	for _, want := range []string{"name: ", "url: ", "method: ", "headers.Host: Host is set by voicegate", "timeout: must be positive"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", probs, want)
		}
	}
}
