package deploy

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/server"
)

const (
	unitFile   = "systemd/voicegate.service"
	envExample = "systemd/voicegate.env.example"
	dataDir    = "/var/lib/voicegate"
	configPath = "/etc/voicegate/voicegate.yaml"
	envPath    = "/etc/voicegate/voicegate.env"
)

// unit is a parsed systemd unit file: section -> key -> every value
// assigned, in order (an empty assignment is kept: it resets a list).
type unit map[string]map[string][]string

// parseUnit reads the systemd unit syntax: [Section] headers, Key=Value
// lines, comments starting with # or ; and lines continued with a trailing
// backslash (joined with a space, as systemd does).
func parseUnit(text string) (unit, error) {
	u := unit{}
	section := ""
	var pending string
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if pending != "" && (strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue // comments inside a continuation are skipped
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value inside a section", n, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	if pending != "" {
		return nil, fmt.Errorf("the file ends inside a continued line")
	}
	return u, sc.Err()
}

// last returns the effective value of a single-valued key ("" and false
// when unset).
func (u unit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// list returns the effective items of a list key: space-separated values
// accumulate, an empty assignment resets.
func (u unit) list(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// parseTimespan parses a systemd time span ("45s", "1min 30s", "2m", a bare
// number of seconds).
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	units := map[string]time.Duration{
		"us": time.Microsecond, "usec": time.Microsecond, "ms": time.Millisecond, "msec": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	re := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)`)
	var total time.Duration
	for rest := s; strings.TrimSpace(rest) != ""; {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		u, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("bad unit %q in time span %q", m[2], s)
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		total += time.Duration(n * float64(u))
		rest = rest[len(m[0]):]
	}
	return total, nil
}

// requiredService are the [Service] settings the unit must have, each with
// the check of its value. checkUnit reports every one that fails.
var requiredService = map[string]func(u unit, v string) error{
	"NoNewPrivileges":         wantTrue,
	"ProtectHome":             wantTrue,
	"PrivateTmp":              wantTrue,
	"PrivateDevices":          wantTrue,
	"ProtectKernelTunables":   wantTrue,
	"ProtectKernelModules":    wantTrue,
	"ProtectKernelLogs":       wantTrue,
	"ProtectControlGroups":    wantTrue,
	"RestrictNamespaces":      wantTrue,
	"LockPersonality":         wantTrue,
	"MemoryDenyWriteExecute":  wantTrue,
	"ProtectSystem":           wantValue("strict"),
	"SystemCallArchitectures": wantValue("native"),
	"UMask":                   wantValue("0077"),
	"Restart":                 wantValue("on-failure"),
	"KillSignal":              wantValue("SIGTERM"),
	"StateDirectory":          wantValue(strings.TrimPrefix(dataDir, "/var/lib/")),
	"StateDirectoryMode":      wantValue("0700"),
	"EnvironmentFile":         wantValue(envPath), // no "-": a missing file is an error
	"User": func(u unit, v string) error {
		if v == "" || v == "root" || v == "0" {
			return fmt.Errorf("must be a dedicated user, not %q", v)
		}
		return nil
	},
	"CapabilityBoundingSet": func(u unit, _ string) error {
		if c := u.list("Service", "CapabilityBoundingSet"); len(c) != 0 {
			return fmt.Errorf("must be empty, got %v (CAP_NET_BIND_SERVICE only as a commented option)", c)
		}
		return nil
	},
	"RestrictAddressFamilies": func(u unit, _ string) error {
		got := u.list("Service", "RestrictAddressFamilies")
		slices.Sort(got)
		if want := []string{"AF_INET", "AF_INET6", "AF_UNIX"}; !slices.Equal(got, want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	},
	"SystemCallFilter": func(u unit, _ string) error {
		if !slices.Contains(u.list("Service", "SystemCallFilter"), "@system-service") {
			return fmt.Errorf("must allow @system-service, got %v", u.list("Service", "SystemCallFilter"))
		}
		return nil
	},
	"ReadWritePaths": func(u unit, _ string) error {
		if !slices.Contains(u.list("Service", "ReadWritePaths"), dataDir) {
			return fmt.Errorf("must include data_dir %s", dataDir)
		}
		return nil
	},
	"ExecStart": func(u unit, v string) error {
		f := strings.Fields(v)
		if len(f) != 4 || filepath.Base(f[0]) != "voicegate" || !filepath.IsAbs(f[0]) ||
			!slices.Equal(f[1:], []string{"serve", "--config", configPath}) {
			return fmt.Errorf("got %q, want /…/voicegate serve --config %s", v, configPath)
		}
		return nil
	},
	// voicegate reloads its configuration on SIGHUP (internal/cli/serve.go).
	"ExecReload": wantValue("/bin/kill -HUP $MAINPID"),
	"TimeoutStopSec": func(u unit, v string) error {
		d, err := parseTimespan(v)
		if err != nil {
			return err
		}
		def := server.DefaultConfig()
		if need := def.ShutdownDelay.D() + def.DrainTimeout.D(); d <= need {
			return fmt.Errorf("%s does not exceed server.shutdown_delay + server.drain_timeout (%s + %s): systemd would kill a draining voicegate",
				d, def.ShutdownDelay.D(), def.DrainTimeout.D())
		}
		return nil
	},
}

func wantTrue(_ unit, v string) error {
	if !isTrue(v) {
		return fmt.Errorf("got %q, want yes", v)
	}
	return nil
}

func wantValue(want string) func(unit, string) error {
	return func(_ unit, v string) error {
		if v != want {
			return fmt.Errorf("got %q, want %q", v, want)
		}
		return nil
	}
}

// checkUnit returns every problem of a unit file's text.
func checkUnit(text string) []string {
	u, err := parseUnit(text)
	if err != nil {
		return []string{err.Error()}
	}
	var probs []string
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			probs = append(probs, "no ["+s+"] section")
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range requiredService {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		v, ok := u.last("Service", k)
		if !ok {
			probs = append(probs, k+": missing")
			continue
		}
		if err := requiredService[k](u, v); err != nil {
			probs = append(probs, k+": "+err.Error())
		}
	}
	if c := u.list("Service", "AmbientCapabilities"); len(c) != 0 {
		probs = append(probs, fmt.Sprintf("AmbientCapabilities: must be empty, got %v", c))
	}
	if !regexp.MustCompile(`(?m)^#\s*CapabilityBoundingSet=CAP_NET_BIND_SERVICE\s*$`).MatchString(text) {
		probs = append(probs, "the commented CapabilityBoundingSet=CAP_NET_BIND_SERVICE option for port 443 is missing")
	}
	if v, _ := u.last("Install", "WantedBy"); v != "multi-user.target" {
		probs = append(probs, fmt.Sprintf("WantedBy: got %q, want multi-user.target", v))
	}
	return probs
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnitIsHardened: the shipped unit runs serve --config as a
// dedicated user with every hardening option the deployment guide promises,
// data_dir as its state directory, secrets from the environment file, and a
// stop timeout longer than voicegate's default drain.
func TestSystemdUnitIsHardened(t *testing.T) {
	for _, p := range checkUnit(readFile(t, unitFile)) {
		t.Errorf("%s: %s", unitFile, p)
	}
}

// TestSystemdUnitCheckCatchesEachRemoval: deleting any one required
// setting from the unit makes checkUnit fail, so the test above guards
// every line it names.
func TestSystemdUnitCheckCatchesEachRemoval(t *testing.T) {
	text := readFile(t, unitFile)
	lines := strings.Split(text, "\n")
	removed := 0
	for i, line := range lines {
		key, _, ok := strings.Cut(line, "=")
		if _, required := requiredService[key]; !ok || !required || strings.HasPrefix(line, "#") {
			continue
		}
		mutated := strings.Join(slices.Delete(slices.Clone(lines), i, i+1), "\n")
		if probs := checkUnit(mutated); len(probs) == 0 {
			t.Errorf("removing line %d (%q) goes unnoticed", i+1, line)
		}
		removed++
	}
	if removed < len(requiredService) {
		t.Errorf("only %d of %d required settings were found in %s", removed, len(requiredService), unitFile)
	}
	// A value weakened in place is caught too.
	for _, c := range [][2]string{
		{"ProtectSystem=strict", "ProtectSystem=full"},
		{"TimeoutStopSec=45s", "TimeoutStopSec=30s"},
		{"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"},
		{"CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"},
		{"EnvironmentFile=/etc", "EnvironmentFile=-/etc"},
	} {
		// The setting itself, at the start of a line (comments may quote it).
		if !strings.Contains(text, "\n"+c[0]) {
			t.Errorf("%s has no line %q", unitFile, c[0])
			continue
		}
		if probs := checkUnit(strings.Replace(text, "\n"+c[0], "\n"+c[1], 1)); len(probs) == 0 {
			t.Errorf("%q instead of %q goes unnoticed", c[1], c[0])
		}
	}
}

func TestParseUnitSyntax(t *testing.T) {
	u, err := parseUnit("# c\n[Service]\n; c\nExecStart=/bin/a \\\n  # inside\n  b c\nX=1\nX=\nX=2 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := u.last("Service", "ExecStart"); strings.Join(strings.Fields(v), " ") != "/bin/a b c" {
		t.Errorf("continuation: got %q", v)
	}
	if got := u.list("Service", "X"); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("list reset: got %v", got)
	}
	for _, bad := range []string{"Key=outside\n", "[Service\n", "[Service]\nnokey\n", "[Service]\nA=b \\\n"} {
		if _, err := parseUnit(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
	for in, want := range map[string]time.Duration{"45s": 45 * time.Second, "1min 30s": 90 * time.Second, "40": 40 * time.Second, "2m": 2 * time.Minute, "500ms": 500 * time.Millisecond} {
		if got, err := parseTimespan(in); err != nil || got != want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit (with
// ExecStart pointing at an executable that exists here): any warning about
// the unit — an unknown key, a value systemd cannot parse — fails. Skipped
// only where systemd-analyze is not installed.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := readFile(t, unitFile)
	u, err := parseUnit(text)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := u.last("Service", "ExecStart")
	text = strings.ReplaceAll(text, strings.Fields(exe)[0], self)
	path := filepath.Join(t.TempDir(), "voicegate.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", path).CombinedOutput()
	var mine []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "voicegate.service") {
			mine = append(mine, line)
		}
	}
	if err != nil || len(mine) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// Its own rating of the sandbox (systemd 250+ can rate a file offline).
	out, err = exec.CommandContext(ctx, analyze, "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for voicegate\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Logf("systemd-analyze security --offline not available here: %v", err)
		return
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("systemd-analyze security rates the unit %.1f; the guide promises about 1.6\n%s", level, out)
	}
}

// envVars returns the NAME=value lines of the environment file example,
// commented ones included (as optional).
func envVars(t *testing.T) (active, optional map[string]string) {
	t.Helper()
	active, optional = map[string]string{}, map[string]string{}
	line := regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)
	for l := range strings.SplitSeq(readFile(t, envExample), "\n") {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if m[1] == "" {
			active[m[2]] = m[3]
		} else {
			optional[m[2]] = m[3]
		}
	}
	return active, optional
}

// TestEnvExampleHasPlaceholdersOnly: every value in the example secrets
// file is a placeholder that voicegate's weak-secret check refuses, so the
// example can never run as is; values are unquoted (systemd, docker
// --env-file and kubectl --from-env-file read them alike).
func TestEnvExampleHasPlaceholdersOnly(t *testing.T) {
	active, optional := envVars(t)
	if len(active) == 0 {
		t.Fatalf("%s: no NAME=value line", envExample)
	}
	for _, vars := range []map[string]string{active, optional} {
		for name, v := range vars {
			if confval.WeakSecret(v) == "" {
				t.Errorf("%s: %s=%q would pass as a real secret: use a REPLACE_ME placeholder", envExample, name, v)
			}
			if strings.ContainsAny(v, `"'`) {
				t.Errorf("%s: %s is quoted: kubectl --from-env-file and docker --env-file keep quotes", envExample, name)
			}
		}
	}
	if !strings.Contains(readFile(t, envExample), envPath) {
		t.Errorf("%s does not name where it is installed (%s)", envExample, envPath)
	}
}
