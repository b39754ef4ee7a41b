package deploy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/server"
	"go.yaml.in/yaml/v3"
)

const (
	deploymentDoc = "../docs/deployment.md"
	dockerfile    = "container/Dockerfile"
	// configMarker starts every voicegate configuration in the guide.
	configMarker = "# " + configPath
)

// yamlBlocks returns the ```yaml fenced blocks of a Markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s: unterminated code block", path)
	}
	return blocks
}

// k8sObjects decodes every YAML document of the guide's blocks that has a
// kind, by kind.
func k8sObjects(t *testing.T) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, b := range yamlBlocks(t, deploymentDoc) {
		dec := yaml.NewDecoder(strings.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: a YAML block does not parse: %v\n%s", deploymentDoc, err, b)
			}
			if kind, ok := doc["kind"].(string); ok {
				out[kind] = append(out[kind], doc)
			}
		}
	}
	return out
}

// get walks a decoded YAML document: keys for maps, ints for lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// guideConfigs returns every voicegate configuration in the guide: the
// blocks starting with the config marker, and the ConfigMap's file.
func guideConfigs(t *testing.T) []string {
	t.Helper()
	var cfgs []string
	for _, b := range yamlBlocks(t, deploymentDoc) {
		if strings.HasPrefix(b, configMarker) {
			cfgs = append(cfgs, b)
		}
	}
	for _, cm := range k8sObjects(t)["ConfigMap"] {
		if s, ok := get(cm, "data", "voicegate.yaml").(string); ok {
			cfgs = append(cfgs, s)
		}
	}
	if len(cfgs) < 2 {
		t.Fatalf("%s: want the systemd and the Kubernetes configuration, found %d", deploymentDoc, len(cfgs))
	}
	return cfgs
}

// TestDeploymentDocConfigsAreValid: every voicegate configuration in the
// guide passes voicegate's own validation with the environment file
// example's variables (so each variable it uses is in that file), and
// keeps its data in the unit's state directory.
func TestDeploymentDocConfigsAreValid(t *testing.T) {
	active, optional := envVars(t)
	secrets := map[string]string{}
	for name := range active {
		secrets[name] = randomHex(t)
	}
	for name := range optional {
		secrets[name] = randomHex(t)
	}
	getenv := func(name string) string { return secrets[name] }
	for i, raw := range guideConfigs(t) {
		cfg, err := config.Parse([]byte(raw), config.Options{Getenv: getenv})
		if err != nil {
			t.Errorf("%s: configuration %d is not valid (or uses a variable missing from %s): %v\n%s", deploymentDoc, i+1, envExample, err, raw)
			continue
		}
		if cfg.DataDir != dataDir {
			t.Errorf("%s: configuration %d has data_dir %q; the unit and the image use %s", deploymentDoc, i+1, cfg.DataDir, dataDir)
		}
		if cfg.Admin.Listen == "" && cfg.Admin.PublicMetricsToken == "" {
			t.Errorf("%s: configuration %d serves no metrics", deploymentDoc, i+1)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestDeploymentDocKubernetes: the guide's Kubernetes example keeps the
// rules it states: one replica, Recreate, a ReadWriteOnce claim mounted at
// data_dir, liveness on /healthz and readiness on /readyz, a grace period
// longer than voicegate's default drain, serve --config as the command, and
// an Ingress that routes only the webhook path.
func TestDeploymentDocKubernetes(t *testing.T) {
	objs := k8sObjects(t)
	deps := objs["Deployment"]
	if len(deps) != 1 {
		t.Fatalf("%s: want one Deployment, found %d", deploymentDoc, len(deps))
	}
	d := deps[0]
	if r := get(d, "spec", "replicas"); r != 1 {
		t.Errorf("replicas = %v, want 1: replay cache, sessions and SQLite are per process", r)
	}
	if s := get(d, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("strategy.type = %v, want Recreate: a rolling update runs two pods on one database", s)
	}
	def := server.DefaultConfig()
	need := (def.ShutdownDelay.D() + def.DrainTimeout.D()).Seconds()
	if g, ok := get(d, "spec", "template", "spec", "terminationGracePeriodSeconds").(int); !ok || float64(g) <= need {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than shutdown_delay + drain_timeout (%gs)", get(d, "spec", "template", "spec", "terminationGracePeriodSeconds"), need)
	}
	c := get(d, "spec", "template", "spec", "containers", 0)
	if args := fmt.Sprint(get(c, "args")); args != fmt.Sprint([]any{"serve", "--config", configPath}) {
		t.Errorf("container args = %s, want [serve --config %s]", args, configPath)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if p := get(c, probe, "httpGet", "path"); p != path {
			t.Errorf("%s path = %v, want %s", probe, p, path)
		}
	}
	claim := ""
	for _, v := range get(d, "spec", "template", "spec", "volumes").([]any) {
		if n, ok := get(v, "persistentVolumeClaim", "claimName").(string); ok {
			for _, m := range get(c, "volumeMounts").([]any) {
				if get(m, "name") == get(v, "name") && get(m, "mountPath") == dataDir {
					claim = n
				}
			}
		}
	}
	if claim == "" {
		t.Errorf("no PersistentVolumeClaim mounted at %s", dataDir)
	}
	found := false
	for _, pvc := range objs["PersistentVolumeClaim"] {
		if get(pvc, "metadata", "name") == claim {
			found = true
			if m := fmt.Sprint(get(pvc, "spec", "accessModes")); m != "[ReadWriteOnce]" {
				t.Errorf("claim %s accessModes = %s, want [ReadWriteOnce]", claim, m)
			}
		}
	}
	if !found {
		t.Errorf("the claim %q is not defined", claim)
	}
	if get(c, "envFrom", 0, "secretRef", "name") == nil {
		t.Errorf("secrets are not taken from a Secret with envFrom")
	}

	ings := objs["Ingress"]
	if len(ings) != 1 {
		t.Fatalf("want one Ingress, found %d", len(ings))
	}
	paths, _ := get(ings[0], "spec", "rules", 0, "http", "paths").([]any)
	if len(paths) != 1 || get(paths[0], "path") != dispatch.DefaultSettings().Path || get(paths[0], "pathType") != "Exact" {
		t.Errorf("the Ingress must route exactly one path, %s (Exact), got %v", dispatch.DefaultSettings().Path, paths)
	}
}

// TestDeploymentDocStatesTheLimits: the guide says plainly that more than
// one replica is unsafe, names what to expose, and links the shipped files.
func TestDeploymentDocStatesTheLimits(t *testing.T) {
	doc := readFile(t, deploymentDoc)
	for _, want := range []string{
		"More than one replica is NOT safe today",
		"`POST " + dispatch.DefaultSettings().Path + "`",
		"../deploy/systemd/voicegate.service",
		"../deploy/systemd/voicegate.env.example",
		"../deploy/container/Dockerfile",
		"../deploy/prometheus/voicegate-alerts.yml",
		"monitoring.md",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s does not contain %q", deploymentDoc, want)
		}
	}
	// Every config key the guide names in backticks exists: the prefixes
	// checked are the sections of the configuration.
	key := regexp.MustCompile("`((?:server|vapi|admin|tls|storage|sessions)\\.[a-z_.]+)`")
	known := configKeys(t)
	for _, m := range key.FindAllStringSubmatch(doc, -1) {
		if !known[m[1]] {
			t.Errorf("%s names `%s`, which is not a configuration key", deploymentDoc, m[1])
		}
	}
}

// configKeys lists every dotted key of the README's complete example
// configuration (examples/voicegate.yaml), e.g. "server.drain_timeout".
func configKeys(t *testing.T) map[string]bool {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(readFile(t, "../examples/voicegate.yaml")), &root); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := prefix + n.Content[i].Value
				keys[k] = true
				walk(n.Content[i+1], k+".")
			}
		}
	}
	walk(&root, "")
	return keys
}

// TestDockerfile: the image builds a static binary with the Go version of
// go.mod, runs as a non-root user, keeps data_dir on a volume, and starts
// serve --config.
func TestDockerfile(t *testing.T) {
	df := readFile(t, dockerfile)
	gomod := readFile(t, "../go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, want := range []string{
		"FROM golang:" + m[1] + " ",
		"CGO_ENABLED=0",
		"FROM gcr.io/distroless/static",
		"USER 65532:65532",
		`VOLUME ["` + dataDir + `"]`,
		`ENTRYPOINT ["/usr/local/bin/voicegate"]`,
		`CMD ["serve", "--config", "` + configPath + `"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("%s does not contain %q", dockerfile, want)
		}
	}
	if regexp.MustCompile(`(?m)^HEALTHCHECK`).MatchString(df) {
		t.Errorf("%s has a HEALTHCHECK, which distroless cannot run", dockerfile)
	}
	if bytes.Contains([]byte(df), []byte("USER root")) {
		t.Errorf("%s runs as root", dockerfile)
	}
	if _, err := os.Stat(dockerfile + ".dockerignore"); err != nil {
		t.Errorf("%s.dockerignore: %v", dockerfile, err)
	}
}
