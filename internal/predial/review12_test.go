package predial

import (
	"testing"
	"time"
)

// TestReview12DoNotCallEntriesThatNeverMatch: the do-not-call file is
// documented as E.164, but an entry without the leading + (a national
// number, the 00 international prefix, a bare country code + number) is
// loaded silently and can never match a contact's E.164 number: the
// person who opted out is called. Such lines should be refused at load
// (New error / config problem) or normalised.
func TestReview12DoNotCallEntriesThatNeverMatch(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	for _, line := range []string{"0044 20 7946 0000", "442079460000", "tel:+442079460000"} {
		r, err := New(Config{DoNotCallFile: "dnc.txt"}, []byte("k"), func(string) ([]byte, error) { return []byte(line + "\n"), nil }, func() time.Time { return now }, nil)
		if err != nil {
			continue // refused at load: fine
		}
		if d := r.decideNow(Contact{Number: "+442079460000"}); d.Eligible {
			t.Errorf("do-not-call line %q loaded without complaint, and the number is called: %+v", line, d)
		}
	}
}

// TestReview12ContactZoneLocal: the contact's timeZone is taken from the
// message as is; "Local" makes time.LoadLocation return the server's
// own zone, so calling hours are judged in the gateway host's zone
// instead of the number's prefix or the configured default.
func TestReview12ContactZoneLocal(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("HOST", 12*3600)
	defer func() { time.Local = saved }()
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC) // 10:00 New York, 03:00 next day on the host
	r, err := New(Config{CallingHours: &Hours{Start: "08:00", End: "21:00", DefaultTimeZone: "America/New_York"}}, []byte("k"), nil, func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.decideNow(Contact{Number: "+12125550100", TimeZone: "Local"}); !d.Eligible {
		t.Errorf("timeZone \"Local\" judged in the host's zone: %+v", d)
	}
}
