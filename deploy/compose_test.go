package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const composeFile = "compose.yaml"

// composeService is the part of a Compose service this test reads.
type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command         []string          `yaml:"command"`
	User            string            `yaml:"user"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
}

type composeProject struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

// bindMounts returns a service's host files (source relative to deploy/)
// by their path in the container.
func bindMounts(s composeService) map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (strings.HasPrefix(parts[0], "./") || strings.HasPrefix(parts[0], "../")) {
			out[parts[1]] = parts[0]
		}
	}
	return out
}

// TestComposeCluster: deploy/compose.yaml runs three voicegate replicas
// built from the image's Dockerfile, hardened like the pod, each with the
// same configuration (valid for voicegate, every variable set); Redis with
// its append-only file; PostgreSQL; and a load balancer whose
// configuration routes to the three, by their readiness. Every file it
// mounts exists.
func TestComposeCluster(t *testing.T) {
	var p composeProject
	if err := yaml.Unmarshal([]byte(readFile(t, composeFile)), &p); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for name, s := range p.Services {
		for _, src := range bindMounts(s) {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s: service %s mounts %s: %v", composeFile, name, src, err)
			}
		}
		for _, v := range s.Volumes {
			if vol, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				if _, ok := p.Volumes[vol]; !ok {
					t.Errorf("%s: service %s uses volume %s, which volumes: does not declare", composeFile, name, vol)
				}
			}
		}
	}

	// The replicas.
	var replicas []string
	var configs []string
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		replicas = append(replicas, name)
		if df := filepath.Join(s.Build.Context, s.Build.Dockerfile); filepath.Clean(df) != filepath.Clean(filepath.Join("..", "deploy", dockerfile)) {
			t.Errorf("%s: %s builds %s, want deploy/%s", composeFile, name, df, dockerfile)
		}
		if !slices.Equal(s.Command, []string{"serve", "--config", configPath}) {
			t.Errorf("%s: %s command %q, want serve --config %s", composeFile, name, s.Command, configPath)
		}
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: %s: want user 65532:65532, read_only and cap_drop [ALL]", composeFile, name)
		}
		if s.Environment["VOICEGATE_REPLICA"] != name {
			t.Errorf("%s: %s: VOICEGATE_REPLICA %q, want its service name", composeFile, name, s.Environment["VOICEGATE_REPLICA"])
		}
		src, ok := bindMounts(s)[configPath]
		if !ok {
			t.Errorf("%s: %s does not mount its configuration at %s", composeFile, name, configPath)
			continue
		}
		configs = append(configs, src)
		raw := []byte(readFile(t, src))
		for _, v := range envNames(raw) {
			if _, ok := s.Environment[v]; !ok {
				t.Errorf("%s uses ${%s}, which %s's environment does not set", src, v, name)
			}
		}
		cfg, err := parsedConfig(raw, fakeEnv(t, raw))
		if err != nil {
			t.Errorf("%s: voicegate rejects it: %v", src, err)
			continue
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if drain := cfg.Server.ShutdownDelay.D() + cfg.Server.DrainTimeout.D(); err != nil || grace <= drain {
			t.Errorf("%s: %s stop_grace_period %q must exceed server.shutdown_delay + server.drain_timeout = %s", composeFile, name, s.StopGracePeriod, drain)
		}
		m := topLevel(t, raw)
		if str(m, "state", "driver") != "redis" || str(m, "storage", "driver") != "postgres" {
			t.Errorf("%s: want state.driver redis and storage.driver postgres", src)
		}
		if str(m, "records", "keyring_file") == "" && str(m, "records", "keyring_env") == "" {
			t.Errorf("%s: the replicas need one shared records keyring", src)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, []string{"voicegate-1", "voicegate-2", "voicegate-3"}) {
		t.Fatalf("%s: voicegate replicas %v, want voicegate-1, voicegate-2, voicegate-3", composeFile, replicas)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(configs)))) != 1 {
		t.Errorf("%s: the replicas mount different configurations %v", composeFile, configs)
	}

	// Redis keeps its data across a restart; PostgreSQL is there.
	redis, ok := p.Services["redis"]
	if !ok || !strings.HasPrefix(redis.Image, "redis:") {
		t.Errorf("%s: no redis service", composeFile)
	} else if i := slices.Index(redis.Command, "--appendonly"); i < 0 || i+1 >= len(redis.Command) || redis.Command[i+1] != "yes" {
		t.Errorf("%s: redis command %q: want --appendonly yes", composeFile, redis.Command)
	}
	if pg, ok := p.Services["postgres"]; !ok || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("%s: no postgres service", composeFile)
	}

	// The load balancer routes to the three replicas by /readyz, and is
	// the only service published.
	lb, ok := p.Services["lb"]
	if !ok {
		t.Fatalf("%s: no lb service", composeFile)
	}
	for name, s := range p.Services {
		if name != "lb" && len(s.Ports) > 0 {
			t.Errorf("%s: %s publishes ports %v: only the load balancer should", composeFile, name, s.Ports)
		}
	}
	for _, port := range lb.Ports {
		if !strings.HasPrefix(port, "127.0.0.1:") {
			t.Errorf("%s: lb publishes %s beyond loopback", composeFile, port)
		}
	}
	cfgPath, ok := bindMounts(lb)["/usr/local/etc/haproxy/haproxy.cfg"]
	if !ok {
		t.Fatalf("%s: lb mounts no haproxy.cfg", composeFile)
	}
	hc := readFile(t, cfgPath)
	for _, r := range replicas {
		if !regexp.MustCompile(`(?m)^\s*server\s+` + r + `\s+` + r + `:3000\s.*\bcheck\b`).MatchString(hc) {
			t.Errorf("%s: no checked server line for %s:3000", cfgPath, r)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*option httpchk GET /readyz\s*$`).MatchString(hc) {
		t.Errorf("%s: the health check must be GET /readyz (so draining replicas leave the rotation)", cfgPath)
	}
}
