package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// zoneAt returns a fixed-offset zone (Etc/GMT±N: no daylight saving) in
// which the hour of now is hour.
func zoneAt(t *testing.T, now time.Time, hour int) string {
	t.Helper()
	off := ((hour-now.UTC().Hour())%24 + 24) % 24 // -12..+11 hours from UTC
	if off > 11 {
		off -= 24
	}
	name := fmt.Sprintf("Etc/GMT%+d", -off) // POSIX sign: Etc/GMT-9 is UTC+9
	loc, err := time.LoadLocation(name)
	if err != nil || now.In(loc).Hour() != hour {
		t.Fatalf("zone %s (%v): %s there, want %02d:xx", name, err, now.In(loc).Format("15:04"), hour)
	}
	return name
}

// nightCountry returns, of the countries whose calling code alone gives
// their zone, the one deepest in the night (outside 08:00-20:00) now:
// their offsets span more than the twelve hours of the night, so one is
// always well inside it.
func nightCountry(t *testing.T, now time.Time) (code string, zone *time.Location) {
	t.Helper()
	best := -1
	for _, c := range [][2]string{{"+44", "Europe/London"}, {"+33", "Europe/Paris"}, {"+30", "Europe/Athens"}, {"+971", "Asia/Dubai"},
		{"+91", "Asia/Kolkata"}, {"+65", "Asia/Singapore"}, {"+81", "Asia/Tokyo"}, {"+64", "Pacific/Auckland"}} {
		loc, err := time.LoadLocation(c[1])
		if err != nil {
			t.Fatal(err)
		}
		l := now.In(loc)
		m := l.Hour()*60 + l.Minute()
		if d := min((m-20*60+24*60)%(24*60), (8*60-m+24*60)%(24*60)); (m < 8*60 || m >= 20*60) && d > best {
			best, code, zone = d, c[0], loc
		}
	}
	if zone == nil {
		t.Fatalf("no country outside 08:00-20:00 at %s", now.UTC())
	}
	return code, zone
}

// predialCase is one campaign.predial message and the decision expected.
type predialCase struct {
	name    string
	contact string // the contact object as sent ("" sends none)
	// eligible is the answer expected; nil when it depends on the real
	// clock (decided by the func around the request).
	eligible *bool
	byClock  func(time.Time) bool
	rule     string // rule audited
	detail   string // part of the audited detail
	noHash   bool   // audited without a subject (no number was sent)
}

// TestPredialRules starts the real binary with vapi.predial rules and asks
// it campaign.predial as Vapi does (the SDK's ServerMessageCampaignPredial:
// campaignId and a CampaignContact — id, campaignId, orgId, number, name,
// createdAt), signed, over HTTP: a number on the do-not-call file, a
// contact outside or inside calling hours by each way its zone is found
// (a configured prefix, the number's country, the default, and the
// contact's own timeZone, which the SDK's CampaignContact does not have
// but voicegate reads when present), the attempt after
// max_attempts_per_day (the number written otherwise), and a missing or
// malformed number (the documented default: eligible unless a rule says
// no). Then a reload makes the default zone one where it is night. Each
// decision and its rule must be in the audit log, in order, under the
// number's keyed hash, and no number's digits in the binary's log.
//
// The clock: the binary has no clock to inject (cli.Main gives the app
// none; app.Options.Now serves in-process tests), and a test-only switch
// in the production binary would be a backdoor. So the clock is the real
// one, and the contacts' zones are chosen around it: fixed-offset zones
// in which it is now 02:xx (outside 08:00-20:00) or 13:xx (inside), at
// least five hours from either edge, so that the minute the test runs in
// cannot turn a decision. A country's zone cannot be chosen: the case
// takes the built-in country deepest in its night now, and checks the
// answer against that country's time before and after the request (were
// an edge to fall between them, either answer would be right).
func TestPredialRules(t *testing.T) {
	const secret = "e2e-predial-Xq7Lm3Vz9Rk2Wp8T"
	now := time.Now()
	night, day := zoneAt(t, now, 2), zoneAt(t, now, 13)
	country, countryZone := nightCountry(t, now)
	inHours := func(loc *time.Location) func(time.Time) bool {
		return func(at time.Time) bool { h := at.In(loc).Hour(); return h >= 8 && h < 20 }
	}

	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	dnc := filepath.Join(dir, "do-not-call.txt")
	// As a compliance team exports it: a comment, tel: and 00 forms.
	os.WriteFile(dnc, []byte("# do not call\ntel:+16465550100\n0044 20 7946 0999 # asked on 2026-01-05\n"), 0o600)
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	// Debug logs without the PII redaction net: a number reaching a log
	// line must show here, not be masked.
	config := func(defaultZone string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log: {level: debug, redact_pii: false}
server: {shutdown_delay: 0s}
vapi:
  auth: [{mode: hmac, secrets: ["${E2E_SECRET}"]}]
  predial:
    do_not_call_file: %s
    max_attempts_per_day: 2
    calling_hours:
      start: "08:00"
      end: "20:00"
      default_time_zone: %s
      time_zones: {"+1415": %s, "+1646": %s}
`, dataDir, dnc, defaultZone, night, day)
	}
	os.WriteFile(cfgPath, []byte(config(day)), 0o600)
	env := []string{"E2E_SECRET=" + secret}
	p := start(t, env, "serve", "--config", cfgPath)
	vapi := newVapiSender(t, p, secret)
	var logs strings.Builder // every stderr line read before the end

	contact := func(id, number string, extra ...string) string {
		fields := append([]string{`"id":"` + id + `"`, `"campaignId":"camp-e2e"`, `"orgId":"org-e2e"`}, extra...)
		if number != "" {
			b, _ := json.Marshal(number)
			fields = append(fields, `"number":`+string(b))
		}
		fields = append(fields, `"name":"Jane Roe"`, `"createdAt":"2026-01-05T10:00:00.000Z"`)
		return "{" + strings.Join(fields, ",") + "}"
	}
	yes, no := new(bool), new(bool)
	*yes = true
	var audited []predialCase // what the audit log must hold, in order
	ask := func(tc predialCase) {
		t.Helper()
		body := fmt.Sprintf(`{"message":{"type":"campaign.predial","timestamp":%d,"campaignId":"camp-e2e","phoneNumber":{"id":"pn-e2e"}`, vapi.timestamp())
		if tc.contact != "" {
			body += `,"contact":` + tc.contact
		}
		body += "}}"
		before := time.Now()
		status, answer := vapi.post([]byte(body))
		after := time.Now()
		want := tc.eligible
		if want == nil {
			b, a := tc.byClock(before), tc.byClock(after)
			want = &b
			if a != b { // an edge between the two: either answer is right
				want = nil
			}
		}
		var got struct {
			Eligible *bool `json:"eligible"`
		}
		if status != 200 || json.Unmarshal([]byte(answer), &got) != nil || got.Eligible == nil ||
			answer != fmt.Sprintf(`{"eligible":%t}`, *got.Eligible) || (want != nil && *got.Eligible != *want) {
			t.Fatalf("%s: %d %s, want {\"eligible\":%v}\n%s", tc.name, status, answer, fmtWant(want), drain(p.logs))
		}
		if tc.eligible == nil { // audited as it was decided
			tc.eligible, tc.rule = got.Eligible, "calling_hours"
			if *got.Eligible {
				tc.rule, tc.detail = "none", "no rule refused"
			}
		}
		audited = append(audited, tc)
	}

	cases := []predialCase{
		{name: "on the do-not-call file (tel: line)", contact: contact("c-dnc", "+16465550100"), eligible: no,
			rule: "do_not_call", detail: "the number is on the do-not-call list"},
		{name: "on the do-not-call file (0044 line), written with spaces", contact: contact("c-dnc-uk", "+44 20 7946 0999"), eligible: no,
			rule: "do_not_call", detail: "the number is on the do-not-call list"},
		{name: "night by a configured prefix", contact: contact("c-night", "+14155550101"), eligible: no,
			rule: "calling_hours", detail: " in " + night + " (a configured time_zones prefix) is outside 08:00-20:00"},
		{name: "day by a configured prefix", contact: contact("c-day", "+16465550102"), eligible: yes,
			rule: "none", detail: "no rule refused"},
		{name: "night by the contact's own timeZone, over its number's prefix", contact: contact("c-own-zone", "+16465550104", `"timeZone":"`+night+`"`), eligible: no,
			rule: "calling_hours", detail: " in " + night + " (the contact's) is outside 08:00-20:00"},
		{name: "night by its country (" + countryZone.String() + ")", contact: contact("c-country", country+" 5555 0103"), byClock: inHours(countryZone),
			detail: " in " + countryZone.String() + " (the number's country) is outside 08:00-20:00"},
		{name: "day by the default zone", contact: contact("c-default", "+525555550106"), eligible: yes,
			rule: "none", detail: "no rule refused"},
		{name: "first attempt of the day", contact: contact("c-repeat", "+16465550105"), eligible: yes, rule: "none", detail: "no rule refused"},
		{name: "second attempt of the day", contact: contact("c-repeat", "+16465550105"), eligible: yes, rule: "none", detail: "no rule refused"},
		{name: "third attempt of the day, the number written otherwise", contact: contact("c-repeat", "+1 (646) 555-0105"), eligible: no,
			rule: "max_attempts", detail: "2 attempts today (UTC) already, the most allowed"},
		{name: "another contact's second attempt", contact: contact("c-day", "+16465550102"), eligible: yes, rule: "none", detail: "no rule refused"},
		// The documented default for what no rule can judge: eligible.
		{name: "no contact", eligible: yes, rule: "none", detail: "no rule refused", noHash: true},
		{name: "a contact without a number", contact: contact("c-none", ""), eligible: yes, rule: "none", detail: "no rule refused", noHash: true},
		// With a do-not-call list, a number it cannot be checked against
		// is refused (a national form could be any country's).
		{name: "a number in national form", contact: contact("c-national", "(646) 555-0108"), eligible: no,
			rule: "do_not_call", detail: "not in international form"},
		{name: "a number that is not one", contact: contact("c-junk", "ask for Jane"), eligible: no, rule: "do_not_call", detail: "not in international form"},
		{name: "a number of the wrong JSON type", contact: `{"id":"c-type","campaignId":"camp-e2e","number":6465550107}`, eligible: yes,
			rule: "none", detail: "no rule refused", noHash: true},
		{name: "a number that is not one, again", contact: contact("c-junk", "ask for Jane"), eligible: no, rule: "do_not_call", detail: "not in international form"},
	}
	// The attempts are counted per UTC day: not across its end.
	if left := time.Until(now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)); left < 20*time.Second {
		time.Sleep(left + time.Second)
	}
	for _, tc := range cases {
		ask(tc)
	}

	// Reload with a default zone where it is night: the number no prefix
	// or country places, and a contact with no number, are now refused by
	// the calling hours; the day's attempts are kept; and a number added
	// to the do-not-call file is refused.
	os.WriteFile(cfgPath, []byte(config(night)), 0o600)
	f, err := os.OpenFile(dnc, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("+1 646 555 0102\n")
	f.Close()
	p.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.After(10 * time.Second); !strings.Contains(logs.String(), "configuration reloaded"); {
		select {
		case l := <-p.logs:
			logs.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("no reload:\n%s", logs.String())
		}
	}
	for _, tc := range []predialCase{
		{name: "night by the default zone", contact: contact("c-default", "+525555550106"), eligible: no,
			rule: "calling_hours", detail: " in " + night + " (the default) is outside 08:00-20:00"},
		{name: "no number, night in the default zone", contact: contact("c-none", ""), eligible: no,
			rule: "calling_hours", detail: " in " + night + " (the default) is outside 08:00-20:00", noHash: true},
		{name: "third attempt after the reload", contact: contact("c-repeat", "+16465550105"), eligible: no,
			rule: "max_attempts", detail: "2 attempts today (UTC) already, the most allowed"},
		{name: "added to the do-not-call file", contact: contact("c-day", "+16465550102"), eligible: no,
			rule: "do_not_call", detail: "the number is on the do-not-call list"},
	} {
		ask(tc)
	}

	// A restart (a deploy) keeps the day's attempts: they are in the
	// database, not the process.
	logs.WriteString(p.stop(t))
	p = start(t, env, "serve", "--config", cfgPath)
	vapi = newVapiSender(t, p, secret)
	ask(predialCase{name: "third attempt after a restart", contact: contact("c-repeat", "+16465550105"), eligible: no,
		rule: "max_attempts", detail: "2 attempts today (UTC) already, the most allowed"})

	// The audit log: one entry per decision, in order, with its rule.
	entries, out := auditList(t, dataDir, "campaign.predial")
	if len(entries) != len(audited) {
		t.Fatalf("%d campaign.predial audit entries, want %d:\n%s", len(entries), len(audited), out)
	}
	hash := regexp.MustCompile(`^[0-9a-f]{32}$`)
	subjects := map[string]string{} // contact id -> its number's hash
	for i, tc := range audited {
		e := entries[i]
		want := fmt.Sprintf("campaign camp-e2e: eligible=%t by rule %s (", *tc.eligible, tc.rule)
		if !strings.HasPrefix(e.detail, want) || !strings.Contains(e.detail, tc.detail) {
			t.Errorf("%s: audited %q, want %q...%q", tc.name, e.detail, want, tc.detail)
		}
		if tc.noHash != (e.subject == "-") || (!tc.noHash && !hash.MatchString(e.subject)) {
			t.Errorf("%s: audit subject %q, want the number's keyed hash (none when no number was sent)", tc.name, e.subject)
		}
		var id struct{ ID string }
		json.Unmarshal([]byte(tc.contact), &id)
		if prev, ok := subjects[id.ID]; ok && !tc.noHash && prev != e.subject {
			t.Errorf("%s: audit subject %q, the same number was %q before", tc.name, e.subject, prev)
		}
		subjects[id.ID] = e.subject
	}
	if out, err := run(t, nil, "audit", "verify", "--data-dir", dataDir); err != nil || !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}

	logs.WriteString(p.stop(t))
	if n := strings.Count(logs.String(), `"msg":"campaign pre-dial"`); n != len(audited) {
		t.Errorf("%d campaign pre-dial log lines, want %d:\n%s", n, len(audited), logs.String())
	}
	// Neither the log nor the audit log holds a number (the national
	// digits, which every written form of a number contains) or a name.
	for _, leak := range []string{"6465550100", "2079460999", "4155550101", "6465550102", "6465550104", "5550108",
		"55550103", "5555550106", "6465550105", "6465550107", "Jane"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs.String())
		}
		if strings.Contains(out, leak) {
			t.Errorf("the audit log holds %q:\n%s", leak, out)
		}
	}
}

func fmtWant(b *bool) string {
	if b == nil {
		return "true or false"
	}
	return fmt.Sprint(*b)
}
