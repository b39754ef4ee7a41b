package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/sqlite"
)

var callsT0 = time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)

// mustCallsDir returns a data directory whose database, written through the
// real store, holds three calls: "call-live" (ringing, then in-progress),
// "call-ended" (a minute later, ended with a report), and "call-odd" (two
// minutes later, whose assistant id holds a terminal escape sequence), and
// the extra calls given. The store stays open, as it is while serve runs,
// until the test ends.
func mustCallsDir(t *testing.T, extra ...calls.Record) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cost, dur := 0.042, 61.5
	for _, err := range []error{
		db.CreateCall(ctx, calls.Record{ID: "call-live", OrgID: "org-1", Type: "inboundPhoneCall", PhoneNumberID: "pn-1", AssistantID: "asst-1", Status: "ringing", CreatedAt: callsT0}),
		db.RecordStatus(ctx, "call-live", calls.StatusChange{Status: "ringing", At: callsT0}),
		db.RecordStatus(ctx, "call-live", calls.StatusChange{Status: "in-progress", At: callsT0.Add(time.Second)}),
		db.CreateCall(ctx, calls.Record{ID: "call-ended", OrgID: "org-1", Type: "webCall", AssistantID: "asst-2", Status: "queued", CreatedAt: callsT0.Add(time.Minute)}),
		db.RecordStatus(ctx, "call-ended", calls.StatusChange{Status: "in-progress", At: callsT0.Add(time.Minute + 2*time.Second)}),
		db.RecordStatus(ctx, "call-ended", calls.StatusChange{Status: "ended", At: callsT0.Add(time.Minute + 63*time.Second)}),
		db.EndCall(ctx, "call-ended", calls.End{Reason: "customer-ended-call", Cost: &cost, Duration: &dur, At: callsT0.Add(time.Minute + 63*time.Second)}),
		db.CreateCall(ctx, calls.Record{ID: "call-odd", AssistantID: "asst\x1b[2J", CreatedAt: callsT0.Add(2 * time.Minute)}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range extra {
		if err := db.CreateCall(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runCLI runs the command line in process and returns its output and exit
// code.
func runCLI(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = Main(ctx, append([]string{"voicegate"}, args...), getenv, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCallsList(t *testing.T) {
	dir := mustCallsDir(t)
	out, errOut, code := runCLI(t, nil, "calls", "list", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 calls:\n%s", out)
	}
	for i, want := range [][]string{
		{"ID", "CREATED", "STATUS", "ENDED REASON", "DURATION", "ASSISTANT ID", "PHONE NUMBER ID", "TYPE"},
		{"call-odd", "2026-11-03T14:02:00.000Z", "-", "-", "-", `"asst\x1b[2J"`, "-", "-"},
		{"call-ended", "2026-11-03T14:01:00.000Z", "ended", "customer-ended-call", "61.5s", "asst-2", "-", "webCall"},
		{"call-live", "2026-11-03T14:00:00.000Z", "in-progress", "-", "-", "asst-1", "pn-1", "inboundPhoneCall"},
	} {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != strings.Join(want, " ") {
			t.Errorf("line %d: %q, want %q", i, got, strings.Join(want, " "))
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a stored escape sequence reached the terminal")
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestCallsListJSON(t *testing.T) {
	// A twin of call-ended, created at the same instant: pages must
	// neither skip nor repeat either.
	dir := mustCallsDir(t, calls.Record{ID: "call-twin", CreatedAt: callsT0.Add(time.Minute)})
	list := func(args ...string) ([]map[string]any, string) {
		t.Helper()
		out, errOut, code := runCLI(t, nil, append([]string{"calls", "list", "--data-dir", dir, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var v []map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: not a JSON array: %v\n%s", args, err, out)
		}
		return v, errOut
	}
	ids := func(v []map[string]any) string {
		var s []string
		for _, c := range v {
			s = append(s, fmt.Sprint(c["id"]))
		}
		return strings.Join(s, " ")
	}

	all, _ := list()
	if ids(all) != "call-odd call-twin call-ended call-live" {
		t.Fatalf("list --json: %s", ids(all))
	}
	ended := all[2]
	want := map[string]any{"id": "call-ended", "org_id": "org-1", "type": "webCall", "phone_number_id": "", "assistant_id": "asst-2",
		"status": "ended", "ended_reason": "customer-ended-call", "cost": 0.042, "duration_seconds": 61.5,
		"created_at": "2026-11-03T14:01:00.000Z", "ended_at": "2026-11-03T14:02:03.000Z"}
	for k, w := range want {
		if ended[k] != w {
			t.Errorf("%s = %#v, want %#v", k, ended[k], w)
		}
	}
	if len(ended) != len(want)+1 { // and updated_at, the write's time
		t.Errorf("unexpected keys in %v", ended)
	}
	if live := all[3]; live["ended_at"] != nil || live["cost"] != nil || live["duration_seconds"] != nil {
		t.Errorf("a live call's end, cost and duration must be null: %v", live)
	}
	if got, _ := list("--status", "in-progress"); ids(got) != "call-live" {
		t.Errorf("--status in-progress: %s", ids(got))
	}
	if got, _ := list("--status", "no-such-status"); len(got) != 0 {
		t.Errorf("--status with no match: %v, want []", got)
	}
	// Paging: a full page says how to get the next one.
	page, hint := list("--limit", "2")
	if ids(page) != "call-odd call-twin" || !strings.Contains(hint, "--before call-twin") {
		t.Errorf("--limit 2: %s; stderr %q", ids(page), hint)
	}
	if got, _ := list("--limit", "2", "--before", "call-twin"); ids(got) != "call-ended call-live" {
		t.Errorf("--before call-twin: %s", ids(got))
	}
	// Page by page, one call each.
	var paged []string
	for before := ""; len(paged) <= len(all); {
		args := []string{"--limit", "1"}
		if before != "" {
			args = append(args, "--before", before)
		}
		got, _ := list(args...)
		if len(got) == 0 {
			break
		}
		before = fmt.Sprint(got[0]["id"])
		paged = append(paged, before)
	}
	if strings.Join(paged, " ") != ids(all) {
		t.Errorf("pages of one: %v, want %s", paged, ids(all))
	}
}

func TestCallsShow(t *testing.T) {
	dir := mustCallsDir(t)
	// The id goes first or after the flags.
	for _, args := range [][]string{
		{"calls", "show", "call-ended", "--data-dir", dir},
		{"calls", "show", "--data-dir", dir, "call-ended"},
	} {
		out, errOut, code := runCLI(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, want := range []string{
			"id               call-ended\n", "org id           org-1\n", "type             webCall\n", "phone number id  -\n",
			"assistant id     asst-2\n", "status           ended\n", "ended reason     customer-ended-call\n",
			"cost             0.042\n", "duration         61.5s\n", "created          2026-11-03T14:01:00.000Z\n",
			"ended            2026-11-03T14:02:03.000Z\n",
			"timeline:\n  2026-11-03T14:01:02.000Z  in-progress\n  2026-11-03T14:02:03.000Z  ended\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
	}
	out, errOut, code := runCLI(t, nil, "calls", "show", "call-live", "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("show --json: exit %d: %s", code, errOut)
	}
	var v struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		EndedAt  *string
		Timeline []struct{ Status, At string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if v.ID != "call-live" || v.Status != "in-progress" || v.EndedAt != nil || fmt.Sprint(v.Timeline) != "[{ringing 2026-11-03T14:00:00.000Z} {in-progress 2026-11-03T14:00:01.000Z}]" {
		t.Errorf("show --json: %+v", v)
	}
	// A call without status changes says so.
	if out, _, code := runCLI(t, nil, "calls", "show", "call-odd", "--data-dir", dir); code != 0 || !strings.Contains(out, "timeline: no status changes") || strings.Contains(out, "\x1b") {
		t.Errorf("show call-odd: exit %d\n%s", code, out)
	}
}

// TestCallsWithConfig: --config is read for data_dir only, so the variables
// of credentials and tool headers need not be set.
func TestCallsWithConfig(t *testing.T) {
	dir := mustCallsDir(t)
	cfg := filepath.Join(t.TempDir(), "voicegate.yaml")
	os.WriteFile(cfg, []byte(`
listen: 127.0.0.1:0
data_dir: ${VG_TEST_DATA}
vapi:
  auth:
    - mode: hmac
      secrets: ["${VG_TEST_UNSET_SECRET}"]
tools:
  - name: getAppointment
    url: http://127.0.0.1:9/appointments
    headers: {Authorization: {env: VG_TEST_UNSET_TOKEN}}
`), 0o600)
	getenv := func(k string) string {
		if k == "VG_TEST_DATA" {
			return dir
		}
		return ""
	}
	out, errOut, code := runCLI(t, getenv, "calls", "show", "call-live", "--config", cfg)
	if code != 0 || !strings.Contains(out, "status           in-progress") {
		t.Fatalf("show with --config: exit %d\n%s%s", code, out, errOut)
	}
	// --data-dir wins over the config's data_dir, as for serve.
	if _, errOut, code := runCLI(t, getenv, "calls", "list", "--config", cfg, "--data-dir", t.TempDir()); code != 1 || !strings.Contains(errOut, "no database in") {
		t.Fatalf("--data-dir must override --config: exit %d %s", code, errOut)
	}
}

// TestCallsRejections: every mistake gets a clear message and its exit code
// (2 for the command line, 1 for what the command found).
func TestCallsRejections(t *testing.T) {
	dir := mustCallsDir(t)
	empty := t.TempDir()
	cfgDir := t.TempDir()
	unsetCfg := filepath.Join(cfgDir, "unset.yaml")
	os.WriteFile(unsetCfg, []byte("data_dir: ${VG_TEST_NOPE}/data\n"), 0o600)
	listCfg := filepath.Join(cfgDir, "list.yaml")
	os.WriteFile(listCfg, []byte("- data_dir\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no subcommand", []string{"calls"}, 2, "calls needs list or show"},
		{"unknown subcommand", []string{"calls", "delete", "x"}, 2, `unknown calls command "delete"`},
		{"list without a store", []string{"calls", "list"}, 2, "calls list needs --config FILE or --data-dir DIR"},
		{"show without a store", []string{"calls", "show", "call-live"}, 2, "calls show needs --config FILE or --data-dir DIR"},
		{"show without an id", []string{"calls", "show", "--data-dir", dir}, 2, "calls show needs a call ID"},
		{"show with two ids", []string{"calls", "show", "a", "b", "--data-dir", dir}, 2, "unexpected arguments: b"},
		{"list with an argument", []string{"calls", "list", "--data-dir", dir, "extra"}, 2, "unexpected arguments: extra"},
		{"unknown flag", []string{"calls", "list", "--data-dir", dir, "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"zero limit", []string{"calls", "list", "--data-dir", dir, "--limit", "0"}, 2, "--limit must be between 1 and 1000, got 0"},
		{"limit over the cap", []string{"calls", "list", "--data-dir", dir, "--limit", "1001"}, 2, "--limit must be between 1 and 1000, got 1001"},
		{"limit not a number", []string{"calls", "list", "--data-dir", dir, "--limit", "ten"}, 2, `invalid value "ten" for flag -limit`},
		{"unknown id", []string{"calls", "show", "nope", "--data-dir", dir}, 1, "no call nope in " + dir},
		{"unknown --before", []string{"calls", "list", "--data-dir", dir, "--before", "nope"}, 1, "no call nope in " + dir},
		{"no database", []string{"calls", "list", "--data-dir", empty}, 1, "no database in " + empty + ": has voicegate served with this data_dir?"},
		{"missing config", []string{"calls", "list", "--config", filepath.Join(cfgDir, "missing.yaml")}, 1, "read config:"},
		{"unset variable in data_dir", []string{"calls", "list", "--config", unsetCfg}, 1, "data_dir: line 1: environment variable VG_TEST_NOPE is not set"},
		{"config not a mapping", []string{"calls", "list", "--config", listCfg}, 1, "not a voicegate config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.msg)
			}
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
		})
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("a read-only command created %v", ents)
	}
	// Help is not a mistake.
	if _, _, code := runCLI(t, nil, "calls", "list", "-h"); code != 0 {
		t.Errorf("calls list -h: exit %d", code)
	}
}

// TestDataDirOfMatchesConfig: the data_dir the calls commands read from a
// config is the one serve uses, ${ENV} expansion included.
func TestDataDirOfMatchesConfig(t *testing.T) {
	env := map[string]string{"VG_D": "/srv/vg", "VG_EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	for _, doc := range []string{
		"data_dir: /var/lib/voicegate\n",
		"data_dir: ${VG_D}\n",
		"data_dir: \"${VG_D}/sub\"\n",
		"data_dir: '${VG_D}'\n",
		"data_dir: ${VG_UNSET:-/fallback}\n",
		"data_dir: ${VG_EMPTY:-/fallback}\n",
		"data_dir: /a$$b\n",
		"data_dir: /a/$VG_D/${VG_D\n",
		"data_dir: relative/dir # ${VG_UNSET} in a comment\n",
		"listen: 127.0.0.1:0\n",
		"data_dir: ~\n",
		"data_dir: 5\n",
		"base: &d /anchored\ndata_dir: *d\n",
		"",
		// Errors on both sides.
		"data_dir: ${VG_UNSET}\n",
		"data_dir: ${VG_EMPTY}\n",
		"data_dir: \"\"\n",
		"data_dir: [a, b]\n",
	} {
		var got string
		st, gotErr := config.LoadStorage(writeTemp(t, doc), config.Options{Getenv: getenv})
		if gotErr == nil {
			got = st.DataDir
		}
		// base: is not a config key; the anchor case is checked against
		// data_dir alone.
		cfg, wantErr := config.Parse([]byte(strings.Replace(doc, "base: &d /anchored\ndata_dir: *d", "data_dir: /anchored", 1)), config.Options{Dev: true, Getenv: getenv})
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%q: LoadStorage error %v, config error %v", doc, gotErr, wantErr)
			continue
		}
		if wantErr == nil && got != cfg.DataDir {
			t.Errorf("%q: LoadStorage's data_dir %q, serve would use %q", doc, got, cfg.DataDir)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "voicegate.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCallsNotFoundIsErrNotFound: scripts embedding the command can branch
// on the error.
func TestCallsNotFoundIsErrNotFound(t *testing.T) {
	dir := mustCallsDir(t)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"voicegate", "calls", "show", "nope", "--data-dir", dir}, func(string) string { return "" }, &out, &errb)
	if !errors.Is(err, calls.ErrNotFound) {
		t.Fatalf("%v, want calls.ErrNotFound", err)
	}
}

// TestCallsOutputNeverCarriesTerminalControls: values stored from webhooks
// may hold C0 or C1 controls or bidirectional overrides; neither the table
// nor the JSON writes them raw (the JSON escapes them, staying valid).
func TestCallsOutputNeverCarriesTerminalControls(t *testing.T) {
	for _, s := range []string{"asst\x1b[2J", "asst\u009b2J", "asst\u202eevil", "asst\u2066x"} {
		if got := text(s); got == s || !strings.HasPrefix(got, `"`) {
			t.Errorf("text(%q) = %q: not quoted", s, got)
		}
		var buf bytes.Buffer
		if err := writeJSON(&buf, map[string]string{"assistant_id": s}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, r := range out {
			if r == 0x1b || r == 0x9b || r == 0x202e || r == 0x2066 {
				t.Errorf("JSON for %q carries %U raw: %q", s, r, out)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["assistant_id"] != s {
			t.Errorf("escaped JSON does not decode back to %q: %q %v", s, back["assistant_id"], err)
		}
	}
}
