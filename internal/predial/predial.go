// Package predial decides Vapi's campaign.predial: whether a campaign may
// call a contact now ({"eligible": bool}). Vapi records anything but that
// answer as a pre-dial failure and never places the call, so an answer is
// always given. The default is safe for the campaign: eligible, unless a
// configured rule says no — a do-not-call list, calling hours in the
// contact's time zone, a maximum number of attempts per contact per day.
package predial

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones on hosts without a zone database (Windows, scratch images)
)

// Config is the "vapi.predial" section.
type Config struct {
	// CallingHours, when set, allow calls only between Start and End
	// (local time of the contact) on Days.
	CallingHours *Hours `yaml:"calling_hours"`
	// DoNotCallFile lists numbers never to call, one per line (E.164; #
	// starts a comment). Read at start and reload; kept in memory as keyed
	// hashes only.
	DoNotCallFile string `yaml:"do_not_call_file"`
	// MaxAttemptsPerDay bounds the calls placed to one number per day
	// (UTC); 0: no bound. Counted in this process's memory.
	MaxAttemptsPerDay int `yaml:"max_attempts_per_day"`
}

// Hours are the calling hours.
type Hours struct {
	Start string `yaml:"start"` // "08:00"
	End   string `yaml:"end"`   // "21:00" (exclusive)
	// Days are the days calls are allowed (mon..sun; default every day).
	Days []string `yaml:"days"`
	// DefaultTimeZone is the contact's zone when neither the contact nor
	// its number tells (an IANA name such as America/New_York).
	DefaultTimeZone string `yaml:"default_time_zone"`
	// TimeZones maps number prefixes (E.164, "+1212", "+44") to zones,
	// longest prefix first; tried before the built-in countries.
	TimeZones map[string]string `yaml:"time_zones"`
}

// countryZones are countries with one time zone on the mainland (their
// calling code is prefix enough). Countries spanning zones (+1, +7, +52,
// +55, +61, ...) need time_zones or the contact's own zone.
var countryZones = map[string]string{
	"+44": "Europe/London", "+49": "Europe/Berlin", "+33": "Europe/Paris", "+39": "Europe/Rome", "+31": "Europe/Amsterdam",
	"+32": "Europe/Brussels", "+41": "Europe/Zurich", "+43": "Europe/Vienna", "+45": "Europe/Copenhagen", "+46": "Europe/Stockholm",
	"+47": "Europe/Oslo", "+48": "Europe/Warsaw", "+353": "Europe/Dublin", "+34": "Europe/Madrid", "+351": "Europe/Lisbon",
	"+358": "Europe/Helsinki", "+30": "Europe/Athens", "+420": "Europe/Prague", "+36": "Europe/Budapest", "+40": "Europe/Bucharest",
	"+81": "Asia/Tokyo", "+82": "Asia/Seoul", "+65": "Asia/Singapore", "+91": "Asia/Kolkata", "+972": "Asia/Jerusalem",
	"+852": "Asia/Hong_Kong", "+86": "Asia/Shanghai", "+64": "Pacific/Auckland", "+27": "Africa/Johannesburg", "+971": "Asia/Dubai",
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Validate returns the section's problems, each starting with its field.
func (c Config) Validate() []string {
	var probs []string
	add := func(f, format string, args ...any) { probs = append(probs, f+": "+fmt.Sprintf(format, args...)) }
	if c.MaxAttemptsPerDay < 0 {
		add("max_attempts_per_day", "must not be negative")
	}
	if h := c.CallingHours; h != nil {
		s, err1 := clock(h.Start)
		e, err2 := clock(h.End)
		switch {
		case err1 != nil:
			add("calling_hours.start", "%v", err1)
		case err2 != nil:
			add("calling_hours.end", "%v", err2)
		case e <= s:
			add("calling_hours.end", "%s is not after start %s", h.End, h.Start)
		}
		for i, d := range h.Days {
			if !slices.Contains(dayNames, strings.ToLower(d)) {
				add(fmt.Sprintf("calling_hours.days[%d]", i), "%q is not one of mon, tue, wed, thu, fri, sat, sun", d)
			}
		}
		if h.DefaultTimeZone == "" {
			add("calling_hours.default_time_zone", "required: the zone of a contact whose number does not tell (e.g. America/New_York)")
		} else if _, err := time.LoadLocation(h.DefaultTimeZone); err != nil {
			add("calling_hours.default_time_zone", "%q is not a time zone", h.DefaultTimeZone)
		}
		for p, z := range h.TimeZones {
			if !strings.HasPrefix(p, "+") || strings.Trim(p[1:], "0123456789") != "" || len(p) < 2 {
				add("calling_hours.time_zones."+p, "not a number prefix such as +1212 or +44")
			}
			if _, err := time.LoadLocation(z); err != nil {
				add("calling_hours.time_zones."+p, "%q is not a time zone", z)
			}
		}
	}
	return probs
}

// clock reads "HH:MM" as minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Contact is what a campaign.predial message tells of the contact.
type Contact struct {
	Number   string
	TimeZone string // when the contact carries one
}

// Decision is an answer and the rule that made it.
type Decision struct {
	Eligible bool
	// Rule is "do_not_call", "max_attempts", "calling_hours", or "none".
	Rule string
	// Detail says why, without the number.
	Detail string
}

// Counter counts the eligible answers per number (by keyed hash) and UTC
// day: in memory (Attempts), or in the call store's database, where the
// count survives restarts and is shared by replicas (internal/sqlite,
// internal/postgres). All pass the suite in predialtest.
type Counter interface {
	// Take counts one attempt of hash h on day (YYYY-MM-DD) unless max
	// are counted already, and says whether it did.
	Take(ctx context.Context, h, day string, max int) (bool, error)
}

// Attempts counts in this process's memory (no database). It outlives
// the rules of one configuration: a reload keeps the day's counts.
type Attempts struct {
	mu    sync.Mutex
	day   string
	count map[string]int
}

// Take implements Counter.
func (a *Attempts) Take(_ context.Context, h, day string, max int) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if day != a.day || a.count == nil {
		a.day, a.count = day, map[string]int{}
	}
	if a.count[h] >= max {
		return false, nil
	}
	a.count[h]++
	return true, nil
}

// Rules decides. Safe for concurrent use.
type Rules struct {
	cfg      Config
	start    int
	end      int
	days     map[time.Weekday]bool
	defZone  *time.Location
	key      []byte
	dnc      map[string]bool // keyed hashes
	now      func() time.Time
	attempts Counter
}

// New builds the rules of a validated configuration. readFile reads the
// do-not-call file; key keys the hashes it is kept as (the same key must
// be used wherever attempts are shared). attempts (nil: a new count in
// memory) counts the day's attempts.
func New(c Config, key []byte, readFile func(string) ([]byte, error), now func() time.Time, attempts Counter) (*Rules, error) {
	r := &Rules{cfg: c, key: key, now: now, dnc: map[string]bool{}, attempts: attempts}
	if r.attempts == nil {
		r.attempts = &Attempts{}
	}
	if h := c.CallingHours; h != nil {
		r.start, _ = clock(h.Start)
		r.end, _ = clock(h.End)
		var err error
		if r.defZone, err = time.LoadLocation(h.DefaultTimeZone); err != nil {
			return nil, err
		}
		if len(h.Days) > 0 {
			r.days = map[time.Weekday]bool{}
			for _, d := range h.Days {
				r.days[time.Weekday(slices.Index(dayNames, strings.ToLower(d)))] = true
			}
		}
	}
	if c.DoNotCallFile != "" {
		b, err := readFile(c.DoNotCallFile)
		if err != nil {
			return nil, fmt.Errorf("do_not_call_file: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for i := 1; sc.Scan(); i++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if strings.TrimSpace(line) == "" {
				continue
			}
			n := Normalize(line)
			if !e164.MatchString(n) {
				// Never quoted: it is a phone number.
				return nil, fmt.Errorf("do_not_call_file line %d: not a number in international form (+ and country code, or 00 and country code)", i)
			}
			r.dnc[r.hash(n)] = true
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("do_not_call_file: %w", err)
		}
	}
	return r, nil
}

// e164 is a number in international form.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Normalize reduces a number to + and digits: "tel:" dropped, a leading
// international prefix 00 read as + ("" when it has no digit).
func Normalize(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "tel:"), "TEL:")
	if t := strings.TrimLeft(s, " ("); strings.HasPrefix(t, "00") {
		s = "+" + t[2:]
	}
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	if strings.Trim(b.String(), "+") == "" {
		return ""
	}
	return b.String()
}

func (r *Rules) hash(n string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(n))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Decide answers for contact c now; an eligible answer counts as an
// attempt. An error is a count that could not be read or written: no
// decision was made (never eligible on a guess).
func (r *Rules) Decide(ctx context.Context, c Contact) (Decision, error) {
	return r.decide(ctx, c, false)
}

// Peek answers like Decide without counting an attempt (a dry run).
func (r *Rules) Peek(c Contact) Decision {
	d, _ := r.decide(context.Background(), c, true)
	return d
}

func (r *Rules) decide(ctx context.Context, c Contact, peek bool) (Decision, error) {
	n := Normalize(c.Number)
	h := ""
	if n != "" {
		h = r.hash(n)
	}
	if h != "" && r.dnc[h] {
		return Decision{Rule: "do_not_call", Detail: "the number is on the do-not-call list"}, nil
	}
	// A number the list cannot be checked against (not in international
	// form: "(646) 555-0100" could be any country's) is refused, not
	// called on a guess.
	if r.cfg.DoNotCallFile != "" && strings.TrimSpace(c.Number) != "" && !e164.MatchString(n) {
		return Decision{Rule: "do_not_call", Detail: "the number is not in international form (+ and country code): it cannot be checked against the do-not-call list"}, nil
	}
	now := r.now()
	if hrs := r.cfg.CallingHours; hrs != nil {
		zone, from := r.zone(c, n)
		local := now.In(zone)
		mins := local.Hour()*60 + local.Minute()
		if (r.days != nil && !r.days[local.Weekday()]) || mins < r.start || mins >= r.end {
			return Decision{Rule: "calling_hours", Detail: fmt.Sprintf("%s %s in %s (%s) is outside %s-%s", strings.ToLower(local.Weekday().String()[:3]),
				local.Format("15:04"), zone, from, hrs.Start, hrs.End)}, nil
		}
	}
	if max := r.cfg.MaxAttemptsPerDay; max > 0 && h != "" && !peek {
		ok, err := r.attempts.Take(ctx, h, now.UTC().Format(time.DateOnly), max)
		if err != nil {
			return Decision{}, fmt.Errorf("count the attempt: %w", err)
		}
		if !ok {
			return Decision{Rule: "max_attempts", Detail: fmt.Sprintf("%d attempts today (UTC) already, the most allowed", max)}, nil
		}
	}
	return Decision{Eligible: true, Rule: "none", Detail: "no rule refused"}, nil
}

// zone is the contact's time zone: its own, else the longest configured
// prefix of its number, else its country's, else the default.
func (r *Rules) zone(c Contact, n string) (*time.Location, string) {
	// "Local" would be this server's zone, not the contact's.
	if c.TimeZone != "" && !strings.EqualFold(c.TimeZone, "Local") {
		if z, err := time.LoadLocation(c.TimeZone); err == nil {
			return z, "the contact's"
		}
	}
	best, zone, from := "", "", ""
	for p, z := range r.cfg.CallingHours.TimeZones {
		if strings.HasPrefix(n, p) && len(p) > len(best) {
			best, zone, from = p, z, "a configured time_zones prefix"
		}
	}
	if zone == "" {
		for p, z := range countryZones {
			if strings.HasPrefix(n, p) && len(p) > len(best) {
				best, zone, from = p, z, "the number's country"
			}
		}
	}
	if zone != "" {
		// Named by where it came from, never by the number's digits.
		if z, err := time.LoadLocation(zone); err == nil {
			return z, from
		}
	}
	return r.defZone, "the default"
}

// AttemptStore keeps the counts in a database (the call store).
type AttemptStore interface {
	// TakeAttempt is Counter.Take, atomically.
	TakeAttempt(ctx context.Context, h, day string, max int) (bool, error)
	// ForgetAttemptsBefore deletes the counts of days before day.
	ForgetAttemptsBefore(ctx context.Context, day string) error
}

// Stored counts in an AttemptStore: the counts survive restarts and are
// shared by every process on the database. The days before the current
// one are deleted when the day changes.
type Stored struct {
	store  AttemptStore
	mu     sync.Mutex
	purged string
}

// NewStored counts in st.
func NewStored(st AttemptStore) *Stored { return &Stored{store: st} }

// Take implements Counter.
func (s *Stored) Take(ctx context.Context, h, day string, max int) (bool, error) {
	s.mu.Lock()
	purge := s.purged != day
	s.mu.Unlock()
	if purge {
		// Not a reason to refuse: an old count left over is harmless.
		if err := s.store.ForgetAttemptsBefore(ctx, day); err == nil {
			s.mu.Lock()
			s.purged = day
			s.mu.Unlock()
		}
	}
	return s.store.TakeAttempt(ctx, h, day, max)
}
