package predial

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func rules(t *testing.T, c Config, now *time.Time, dnc string) *Rules {
	t.Helper()
	if probs := c.Validate(); len(probs) > 0 {
		t.Fatal(probs)
	}
	r, err := New(c, []byte("k"), func(string) ([]byte, error) { return []byte(dnc), nil }, func() time.Time { return *now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDecisions: each rule, with an injected clock. 2026-12-02 is a
// Wednesday; 15:00 UTC is 10:00 in New York, 09:00 in Chicago, 00:00 in
// Tokyo (Thursday).
func TestDecisions(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	r := rules(t, Config{
		DoNotCallFile:     "dnc.txt",
		MaxAttemptsPerDay: 2,
		CallingHours: &Hours{Start: "08:00", End: "21:00", Days: []string{"mon", "tue", "wed", "thu", "fri"}, DefaultTimeZone: "America/New_York",
			TimeZones: map[string]string{"+1312": "America/Chicago", "+1808": "Pacific/Honolulu"}},
	}, &now, "# opted out\n+1 (212) 555-0100\n+44 20 7946 0000 # asked twice\n")
	for _, c := range []struct {
		contact Contact
		rule    string
		detail  string
	}{
		{Contact{Number: "+12125550100"}, "do_not_call", ""},
		{Contact{Number: "+442079460000"}, "do_not_call", ""},
		{Contact{Number: "+12125550199"}, "none", ""},                                                        // 10:00 in New York (the default)
		{Contact{Number: "+13125550199"}, "none", ""},                                                        // 09:00 in Chicago
		{Contact{Number: "+18085550199"}, "calling_hours", "05:00 in Pacific/Honolulu"},                      // 05:00 in Honolulu
		{Contact{Number: "+81312345678"}, "calling_hours", "thu 00:00 in Asia/Tokyo (the number's country)"}, // a country's zone
		{Contact{Number: "+12125550198", TimeZone: "Asia/Tokyo"}, "calling_hours", "the contact's"},
		{Contact{Number: "+12125550198", TimeZone: "Not/AZone"}, "none", ""}, // an unknown zone: the number's
		// Numbers the list cannot be checked against are refused.
		{Contact{Number: "(212) 555-0100"}, "do_not_call", "not in international form"},
		{Contact{Number: "ask for Jane"}, "do_not_call", "not in international form"},
		{Contact{Number: "+1234"}, "do_not_call", "not in international form"},
	} {
		d := r.decideNow(c.contact)
		if d.Rule != c.rule || d.Eligible != (c.rule == "none") || !strings.Contains(d.Detail, c.detail) {
			t.Errorf("%+v: %+v, want rule %s (%q)", c.contact, d, c.rule, c.detail)
		}
		if strings.Contains(d.Detail, c.contact.Number[2:]) {
			t.Errorf("the decision's detail names the number: %q", d.Detail)
		}
	}
	// +12125550199 was eligible once; one more today, then no.
	if d := r.decideNow(Contact{Number: "+1 212-555-0199"}); !d.Eligible {
		t.Fatalf("second attempt: %+v", d)
	}
	if d := r.decideNow(Contact{Number: "+12125550199"}); d.Eligible || d.Rule != "max_attempts" {
		t.Fatalf("third attempt: %+v", d)
	}
	now = now.Add(24 * time.Hour) // Thursday: counts start again
	if d := r.decideNow(Contact{Number: "+12125550199"}); !d.Eligible {
		t.Fatalf("next day: %+v", d)
	}
	now = time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC) // Saturday
	if d := r.decideNow(Contact{Number: "+12125550197"}); d.Rule != "calling_hours" || !strings.HasPrefix(d.Detail, "sat ") {
		t.Fatalf("Saturday: %+v", d)
	}
}

// TestSafeDefault: no rule configured, or a contact without a number:
// eligible.
func TestSafeDefault(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	if d := rules(t, Config{}, &now, "").decideNow(Contact{Number: "+12125550100"}); !d.Eligible || d.Rule != "none" {
		t.Fatalf("%+v", d)
	}
	r := rules(t, Config{MaxAttemptsPerDay: 1, DoNotCallFile: "f"}, &now, "+12125550100\n")
	for range 3 {
		if d := r.decideNow(Contact{}); !d.Eligible {
			t.Fatalf("no number: %+v", d)
		}
	}
}

func TestValidateAndLoad(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"negative attempts": {Config{MaxAttemptsPerDay: -1}, "max_attempts_per_day: "},
		"bad start":         {Config{CallingHours: &Hours{Start: "8am", End: "21:00", DefaultTimeZone: "UTC"}}, "calling_hours.start: "},
		"end before start":  {Config{CallingHours: &Hours{Start: "21:00", End: "08:00", DefaultTimeZone: "UTC"}}, "calling_hours.end: "},
		"bad day":           {Config{CallingHours: &Hours{Start: "08:00", End: "21:00", Days: []string{"monday"}, DefaultTimeZone: "UTC"}}, "calling_hours.days[0]: "},
		"no default zone":   {Config{CallingHours: &Hours{Start: "08:00", End: "21:00"}}, "calling_hours.default_time_zone: "},
		"bad zone":          {Config{CallingHours: &Hours{Start: "08:00", End: "21:00", DefaultTimeZone: "Mars/Olympus"}}, "calling_hours.default_time_zone: "},
		"bad prefix":        {Config{CallingHours: &Hours{Start: "08:00", End: "21:00", DefaultTimeZone: "UTC", TimeZones: map[string]string{"1212": "UTC"}}}, "calling_hours.time_zones.1212: "},
	} {
		if got := strings.Join(c.cfg.Validate(), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
	_, err := New(Config{DoNotCallFile: "/missing"}, []byte("k"), func(string) ([]byte, error) { return nil, errors.New("no such file") }, time.Now, nil)
	if err == nil || !strings.Contains(err.Error(), "do_not_call_file") {
		t.Fatalf("a missing list: %v", err)
	}
}

// decideNow is Decide, failing on a count error (the memory counter has
// none).
func (r *Rules) decideNow(c Contact) Decision {
	d, err := r.Decide(context.Background(), c)
	if err != nil {
		panic(err)
	}
	return d
}
