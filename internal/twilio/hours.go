package twilio

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones on machines without a zoneinfo database (Windows)
)

// span is one opening span: a set of weekdays, from and to minutes of the
// day (to may be 24*60).
type span struct {
	days     [7]bool
	from, to int
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// compile reads the time zone and the spans.
func (h *Hours) compile() error {
	if h.TimeZone == "" {
		return fmt.Errorf("time_zone: must be set (an IANA name such as America/New_York)")
	}
	loc, err := time.LoadLocation(h.TimeZone)
	if err != nil {
		return fmt.Errorf("time_zone: %q is not an IANA time zone", h.TimeZone)
	}
	if len(h.Open) == 0 {
		return fmt.Errorf("open: at least one span such as \"mon-fri 08:00-18:00\"")
	}
	spans := make([]span, 0, len(h.Open))
	for i, s := range h.Open {
		sp, err := parseSpan(s)
		if err != nil {
			return fmt.Errorf("open[%d]: %q: %v", i, s, err)
		}
		spans = append(spans, sp)
	}
	h.loc, h.spans = loc, spans
	return nil
}

// parseSpan reads "mon-fri 08:00-18:00", "sat,sun 10:00-12:00" or
// "daily 00:00-24:00".
func parseSpan(s string) (span, error) {
	var sp span
	f := strings.Fields(s)
	if len(f) != 2 {
		return sp, fmt.Errorf(`want "DAYS HH:MM-HH:MM", such as "mon-fri 08:00-18:00"`)
	}
	if f[0] == "daily" {
		for i := range sp.days {
			sp.days[i] = true
		}
	} else {
		for _, part := range strings.Split(f[0], ",") {
			a, b, isRange := strings.Cut(part, "-")
			da, ok1 := dayNames[a]
			db, ok2 := dayNames[b]
			if !ok1 || (isRange && !ok2) {
				return sp, fmt.Errorf("days %q: use mon, tue, wed, thu, fri, sat, sun, ranges (mon-fri), lists (sat,sun) or daily", f[0])
			}
			if !isRange {
				db = da
			}
			for d := da; ; d = (d + 1) % 7 {
				sp.days[d] = true
				if d == db {
					break
				}
			}
		}
	}
	from, to, ok := strings.Cut(f[1], "-")
	var err error
	if !ok {
		return sp, fmt.Errorf("hours %q: want HH:MM-HH:MM", f[1])
	}
	if sp.from, err = minutes(from); err != nil {
		return sp, err
	}
	if sp.to, err = minutes(to); err != nil {
		return sp, err
	}
	if sp.to <= sp.from {
		return sp, fmt.Errorf("hours %q: the end must be after the start (a span past midnight is two spans)", f[1])
	}
	return sp, nil
}

func minutes(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

// OpenAt reports whether the hours are open at t.
func (h *Hours) OpenAt(t time.Time) bool {
	if h == nil {
		return true
	}
	lt := t.In(h.loc)
	m := lt.Hour()*60 + lt.Minute()
	for _, sp := range h.spans {
		if sp.days[lt.Weekday()] && m >= sp.from && m < sp.to {
			return true
		}
	}
	return false
}
