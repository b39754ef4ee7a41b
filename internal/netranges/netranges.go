// Package netranges provides the voice providers' published address ranges
// — Twilio's SIP signaling edges and media range, Twilio's Static Proxy,
// Vapi's static webhook range and SIP addresses — as named presets, and the
// values still circulating that are out of date.
//
// Everything comes from one embedded data file, ranges.yaml, which records
// for each range its source and the day it was taken from it. The file is
// decoded strictly and validated (every CIDR valid, canonical and public;
// sources https URLs; dates real days; no overlap; no current range listed
// as out of date) the first time it is used; TestData runs the same checks,
// so a broken file fails the build's tests, never a running command.
package netranges

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed ranges.yaml
var rangesYAML []byte

// ErrUnknownPreset is returned (wrapped, with the name) for a preset name
// that the data file does not define.
var ErrUnknownPreset = errors.New("unknown preset")

// ErrUnknownEdge is returned (wrapped, with the name) for an edge or region
// that a preset does not have.
var ErrUnknownEdge = errors.New("unknown edge")

// Proto is the protocol of a published port range.
type Proto string

// The protocols a port range can name. TLS is TLS over TCP: a firewall
// matches it as TCP.
const (
	UDP Proto = "udp"
	TCP Proto = "tcp"
	TLS Proto = "tls"
)

// Transport is the protocol a firewall matches: TCP for TLS.
func (p Proto) Transport() Proto {
	if p == TLS {
		return TCP
	}
	return p
}

// PortRange is a published port range, From to To inclusive.
type PortRange struct {
	Proto    Proto
	From, To uint16
}

// String returns the range as written in the data file: "udp/5060" or
// "udp/10000-60000".
func (r PortRange) String() string {
	if r.From == r.To {
		return fmt.Sprintf("%s/%d", r.Proto, r.From)
	}
	return fmt.Sprintf("%s/%d-%d", r.Proto, r.From, r.To)
}

// ParsePortRange parses "PROTO/PORT" or "PROTO/FROM-TO", PROTO one of udp,
// tcp, tls, ports 1 to 65535 with FROM <= TO.
func ParsePortRange(s string) (PortRange, error) {
	proto, ports, ok := strings.Cut(s, "/")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %q: want PROTO/PORT or PROTO/FROM-TO", s)
	}
	r := PortRange{Proto: Proto(proto)}
	if r.Proto != UDP && r.Proto != TCP && r.Proto != TLS {
		return PortRange{}, fmt.Errorf("port range %q: protocol %q is not udp, tcp or tls", s, proto)
	}
	from, to, isRange := strings.Cut(ports, "-")
	var err error
	if r.From, err = parsePort(from); err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	r.To = r.From
	if isRange {
		if r.To, err = parsePort(to); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
		}
		if r.To <= r.From {
			return PortRange{}, fmt.Errorf("port range %q: %d is not above %d", s, r.To, r.From)
		}
	}
	return r, nil
}

// parsePort parses a port number from 1 to 65535, in plain decimal.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// Range is one published address range.
type Range struct {
	// Prefix is the range, canonical (no host bits set).
	Prefix netip.Prefix
	// Edge names the edge location or region the range serves ("virginia",
	// "us1"); empty for a range that serves all of them.
	Edge string
	// Location is the edge's name as the provider writes it.
	Location string
	// Ports are the provider's published ports for the range; none when the
	// range reaches a port of yours (a webhook listener).
	Ports []PortRange
	// Source is the URL the range was published at.
	Source string
	// SourceDate is the date the source showed as its last change
	// (YYYY-MM-DD), or empty where it was not recorded.
	SourceDate string
	// Taken is the day the range was taken from its source into the data
	// file (YYYY-MM-DD).
	Taken string
}

// Preset is a named set of ranges with one purpose, such as Twilio's SIP
// signaling.
type Preset struct {
	// Name is the preset's name: "twilio-signaling", "vapi-webhooks", ….
	Name string
	// Provider is "twilio" or "vapi".
	Provider string
	// Description says what the ranges are, in one line.
	Description string
	// Note is what an operator must know to use them correctly.
	Note string
	// Ranges are in the data file's order.
	Ranges []Range
}

// Prefixes returns the preset's ranges as prefixes, in the data file's
// order: what a source allowlist takes.
func (p Preset) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(p.Ranges))
	for i, r := range p.Ranges {
		out[i] = r.Prefix
	}
	return out
}

// Edges returns the names of the preset's edges or regions, in the data
// file's order; none for a preset whose ranges serve every edge.
func (p Preset) Edges() []string {
	var out []string
	for _, r := range p.Ranges {
		if r.Edge != "" {
			out = append(out, r.Edge)
		}
	}
	return out
}

// Select returns the preset with only the ranges of the named edges, in the
// data file's order. It returns an error wrapping ErrUnknownEdge for a name
// the preset does not have (a preset without edges has none).
func (p Preset) Select(edges ...string) (Preset, error) {
	have := p.Edges()
	for _, e := range edges {
		if !slices.Contains(have, e) {
			return Preset{}, fmt.Errorf("%w %q in %s (edges: %s)", ErrUnknownEdge, e, p.Name, orNone(have))
		}
	}
	out := p
	out.Ranges = nil
	for _, r := range p.Ranges {
		if slices.Contains(edges, r.Edge) {
			out.Ranges = append(out.Ranges, r)
		}
	}
	return out, nil
}

// OutdatedRange is an address range that still circulates as a provider's
// and is out of date.
type OutdatedRange struct {
	Prefix netip.Prefix
	// Provider is the provider it is attributed to.
	Provider string
	// ClaimedAs is what it circulates as ("Twilio US1").
	ClaimedAs string
	// Why says what is wrong with it and what replaced it.
	Why string
	// Current names the presets that replace it.
	Current []string
	// Source, SourceDate and Taken are as for Range.
	Source, SourceDate, Taken string
}

// OutdatedPorts is a port range that still circulates as a provider's and
// is out of date.
type OutdatedPorts struct {
	Ports PortRange
	// Provider, ClaimedAs, Why, Current, Source, SourceDate and Taken are as
	// for OutdatedRange.
	Provider, ClaimedAs, Why  string
	Current                   []string
	Source, SourceDate, Taken string
}

// catalog is the decoded, validated data file.
type catalog struct {
	presets       []Preset
	outdated      []OutdatedRange
	outdatedPorts []OutdatedPorts
}

// load decodes and validates the embedded file once. It panics if the file
// is invalid: it is part of the build, and TestData fails on the same
// problems first.
var load = sync.OnceValue(func() *catalog {
	c, err := parse(rangesYAML)
	if err != nil {
		panic("netranges: the embedded ranges.yaml is invalid: " + err.Error())
	}
	return c
})

// Presets returns every preset, in the data file's order. The result is a
// copy: changing it changes nothing here.
func Presets() []Preset {
	c := load()
	out := make([]Preset, len(c.presets))
	for i, p := range c.presets {
		out[i] = clonePreset(p)
	}
	return out
}

// Names returns the preset names, in the data file's order.
func Names() []string {
	var out []string
	for _, p := range load().presets {
		out = append(out, p.Name)
	}
	return out
}

// Lookup returns the named preset (a copy), or an error wrapping
// ErrUnknownPreset.
func Lookup(name string) (Preset, error) {
	for _, p := range load().presets {
		if p.Name == name {
			return clonePreset(p), nil
		}
	}
	return Preset{}, fmt.Errorf("%w %q (presets: %s)", ErrUnknownPreset, name, strings.Join(Names(), ", "))
}

// Prefixes returns the prefixes of the named presets, in the order given,
// each once: what a route's source allowlist is built from. A name is a
// preset ("vapi-webhooks") or a preset and one of its edges
// ("twilio-static-proxy:us1"). It returns an error wrapping
// ErrUnknownPreset or ErrUnknownEdge for a name it does not know.
func Prefixes(names ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, name := range names {
		preset, edge, hasEdge := strings.Cut(name, ":")
		p, err := Lookup(preset)
		if err != nil {
			return nil, err
		}
		if hasEdge {
			if p, err = p.Select(edge); err != nil {
				return nil, err
			}
		}
		for _, pfx := range p.Prefixes() {
			if !slices.Contains(out, pfx) {
				out = append(out, pfx)
			}
		}
	}
	return out, nil
}

// Outdated reports whether p is, or takes in addresses of, a range known to
// be out of date, and returns that range. A prefix entirely inside a
// current preset's range is never outdated, even where an outdated range
// covers it (54.172.60.0/30, Twilio's Virginia signaling, lies inside the
// outdated 54.172.60.0/23; 54.172.60.0/24 does not lie inside a current
// range and is reported). A prefix broader than /16 (IPv6: /32), such as
// 0.0.0.0/0, is not taken for a copy of an outdated range.
func Outdated(p netip.Prefix) (OutdatedRange, bool) {
	c := load()
	p = p.Masked()
	for _, o := range c.outdated {
		// A prefix far broader than the outdated one (0.0.0.0/0 for "any
		// address") is not a copy of it.
		if !o.Prefix.Overlaps(p) || p.Bits() < broadest(p) {
			continue
		}
		if c.insideCurrent(p) {
			return OutdatedRange{}, false
		}
		return cloneOutdated(o), true
	}
	return OutdatedRange{}, false
}

// broadest is the shortest prefix length still taken for a copy of an
// outdated range: /16 for IPv4, /32 for IPv6.
func broadest(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 16
	}
	return 32
}

// OutdatedPortRange reports whether r is a port range known to be out of
// date (the same transport and the same ports), and returns it.
func OutdatedPortRange(r PortRange) (OutdatedPorts, bool) {
	for _, o := range load().outdatedPorts {
		if o.Ports.Proto.Transport() == r.Proto.Transport() && o.Ports.From == r.From && o.Ports.To == r.To {
			o.Current = slices.Clone(o.Current)
			return o, true
		}
	}
	return OutdatedPorts{}, false
}

// OutdatedRanges returns every address range known to be out of date.
func OutdatedRanges() []OutdatedRange {
	var out []OutdatedRange
	for _, o := range load().outdated {
		out = append(out, cloneOutdated(o))
	}
	return out
}

// OutdatedPortRanges returns every port range known to be out of date.
func OutdatedPortRanges() []OutdatedPorts {
	var out []OutdatedPorts
	for _, o := range load().outdatedPorts {
		o.Current = slices.Clone(o.Current)
		out = append(out, o)
	}
	return out
}

// insideCurrent reports whether p lies entirely inside a current preset's
// range.
func (c *catalog) insideCurrent(p netip.Prefix) bool {
	for _, pr := range c.presets {
		for _, r := range pr.Ranges {
			if r.Prefix.Bits() <= p.Bits() && r.Prefix.Contains(p.Addr()) {
				return true
			}
		}
	}
	return false
}

func clonePreset(p Preset) Preset {
	p.Ranges = slices.Clone(p.Ranges)
	for i := range p.Ranges {
		p.Ranges[i].Ports = slices.Clone(p.Ranges[i].Ports)
	}
	return p
}

func cloneOutdated(o OutdatedRange) OutdatedRange {
	o.Current = slices.Clone(o.Current)
	return o
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// The data file's shape. Decoding is strict: an unknown key is an error.
type (
	fileData struct {
		Presets  []filePreset `yaml:"presets"`
		Outdated struct {
			Ranges []fileOutdated `yaml:"ranges"`
			Ports  []fileOutdated `yaml:"ports"`
		} `yaml:"outdated"`
	}
	filePreset struct {
		Name        string      `yaml:"name"`
		Provider    string      `yaml:"provider"`
		Description string      `yaml:"description"`
		Note        string      `yaml:"note"`
		Ranges      []fileRange `yaml:"ranges"`
	}
	fileRange struct {
		CIDR       string   `yaml:"cidr"`
		Edge       string   `yaml:"edge"`
		Location   string   `yaml:"location"`
		Ports      []string `yaml:"ports"`
		Source     string   `yaml:"source"`
		SourceDate string   `yaml:"source_date"`
		Taken      string   `yaml:"taken"`
	}
	fileOutdated struct {
		CIDR       string   `yaml:"cidr"`
		Ports      string   `yaml:"ports"`
		Provider   string   `yaml:"provider"`
		ClaimedAs  string   `yaml:"claimed_as"`
		Why        string   `yaml:"why"`
		Current    []string `yaml:"current"`
		Source     string   `yaml:"source"`
		SourceDate string   `yaml:"source_date"`
		Taken      string   `yaml:"taken"`
	}
)

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// parse decodes data strictly and validates it, returning every problem
// found (joined), each prefixed with where it is.
func parse(data []byte) (*catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileData
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	c := &catalog{}
	seen := map[string]bool{}
	if len(f.Presets) == 0 {
		bad("presets", "none")
	}
	for i, fp := range f.Presets {
		where := fmt.Sprintf("presets[%d] %s", i, fp.Name)
		if !nameRE.MatchString(fp.Name) {
			bad(where, "name %q is not lower-case words joined by '-'", fp.Name)
		}
		if seen[fp.Name] {
			bad(where, "a second preset named %q", fp.Name)
		}
		seen[fp.Name] = true
		if !nameRE.MatchString(fp.Provider) {
			bad(where, "provider %q is not a lower-case name", fp.Provider)
		}
		if strings.TrimSpace(fp.Description) == "" {
			bad(where, "no description")
		}
		if len(fp.Ranges) == 0 {
			bad(where, "no ranges")
		}
		p := Preset{Name: fp.Name, Provider: fp.Provider, Description: fp.Description, Note: fp.Note}
		edges := map[string]bool{}
		for j, fr := range fp.Ranges {
			rwhere := fmt.Sprintf("%s ranges[%d] %s", where, j, fr.CIDR)
			r := Range{Edge: fr.Edge, Location: fr.Location, Source: fr.Source, SourceDate: fr.SourceDate, Taken: fr.Taken}
			var err error
			if r.Prefix, err = parsePrefix(fr.CIDR); err != nil {
				bad(rwhere, "%v", err)
			}
			if (fr.Edge == "") != (fp.Ranges[0].Edge == "") {
				bad(rwhere, "some ranges of the preset name an edge and some do not")
			}
			if fr.Edge != "" {
				if !nameRE.MatchString(fr.Edge) {
					bad(rwhere, "edge %q is not lower-case words joined by '-'", fr.Edge)
				}
				if edges[fr.Edge] {
					bad(rwhere, "a second range for edge %q", fr.Edge)
				}
				edges[fr.Edge] = true
			}
			if fr.Location != "" && fr.Edge == "" {
				bad(rwhere, "a location without an edge")
			}
			for _, s := range fr.Ports {
				pr, err := ParsePortRange(s)
				if err != nil {
					bad(rwhere, "%v", err)
					continue
				}
				if slices.Contains(r.Ports, pr) {
					bad(rwhere, "port range %s twice", pr)
				}
				r.Ports = append(r.Ports, pr)
			}
			for _, err := range checkProvenance(fr.Source, fr.SourceDate, fr.Taken) {
				bad(rwhere, "%v", err)
			}
			p.Ranges = append(p.Ranges, r)
		}
		c.presets = append(c.presets, p)
	}

	// No two current ranges overlap, in one preset or across presets: each
	// address has one meaning.
	type located struct {
		p     netip.Prefix
		where string
	}
	var all []located
	for _, p := range c.presets {
		for _, r := range p.Ranges {
			if !r.Prefix.IsValid() {
				continue
			}
			for _, o := range all {
				if o.p.Overlaps(r.Prefix) {
					bad(p.Name+" "+r.Prefix.String(), "overlaps %s", o.where)
				}
			}
			all = append(all, located{r.Prefix, p.Name + " " + r.Prefix.String()})
		}
	}

	for i, fo := range f.Outdated.Ranges {
		where := fmt.Sprintf("outdated.ranges[%d] %s", i, fo.CIDR)
		o := OutdatedRange{Provider: fo.Provider, ClaimedAs: fo.ClaimedAs, Why: fo.Why, Current: fo.Current, Source: fo.Source, SourceDate: fo.SourceDate, Taken: fo.Taken}
		var err error
		if o.Prefix, err = parsePrefix(fo.CIDR); err != nil {
			bad(where, "%v", err)
		}
		if fo.Ports != "" {
			bad(where, "an outdated address range has no ports (list port ranges under outdated.ports)")
		}
		for _, err := range checkOutdated(fo, seen) {
			bad(where, "%v", err)
		}
		if o.Prefix.IsValid() && c.insideCurrent(o.Prefix) {
			bad(where, "lies inside a current range")
		}
		c.outdated = append(c.outdated, o)
	}
	for i, fo := range f.Outdated.Ports {
		where := fmt.Sprintf("outdated.ports[%d] %s", i, fo.Ports)
		o := OutdatedPorts{Provider: fo.Provider, ClaimedAs: fo.ClaimedAs, Why: fo.Why, Current: fo.Current, Source: fo.Source, SourceDate: fo.SourceDate, Taken: fo.Taken}
		var err error
		if o.Ports, err = ParsePortRange(fo.Ports); err != nil {
			bad(where, "%v", err)
		}
		if fo.CIDR != "" {
			bad(where, "an outdated port range has no cidr (list address ranges under outdated.ranges)")
		}
		for _, err := range checkOutdated(fo, seen) {
			bad(where, "%v", err)
		}
		for _, p := range c.presets {
			for _, r := range p.Ranges {
				if slices.Contains(r.Ports, o.Ports) {
					bad(where, "is a current port range of %s", p.Name)
				}
			}
		}
		c.outdatedPorts = append(c.outdatedPorts, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// parsePrefix parses a CIDR that must be written canonically: no host bits
// set, IPv4 as IPv4 (not IPv4-mapped IPv6), no zone, and naming public
// unicast addresses.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cidr: %v", err)
	}
	switch {
	case p.Addr().Is4In6():
		return netip.Prefix{}, fmt.Errorf("cidr %q: an IPv4 range written as IPv6", s)
	case p != p.Masked():
		return netip.Prefix{}, fmt.Errorf("cidr %q has host bits set (canonical: %s)", s, p.Masked())
	case p.String() != s:
		return netip.Prefix{}, fmt.Errorf("cidr %q is not written canonically (%s)", s, p)
	case p.Bits() == 0:
		return netip.Prefix{}, fmt.Errorf("cidr %q is every address", s)
	case !p.Addr().IsGlobalUnicast() || p.Addr().IsPrivate():
		return netip.Prefix{}, fmt.Errorf("cidr %q is not a public unicast range", s)
	}
	return p, nil
}

// checkProvenance checks that a source is an https URL and that the dates
// are real days, the source's own no later than the day it was taken.
func checkProvenance(source, sourceDate, taken string) []error {
	var errs []error
	u, err := url.Parse(source)
	if source == "" {
		errs = append(errs, errors.New("no source"))
	} else if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		errs = append(errs, fmt.Errorf("source %q is not an https URL", source))
	}
	takenDay, err := time.Parse(time.DateOnly, taken)
	if err != nil {
		errs = append(errs, fmt.Errorf("taken %q is not a date (YYYY-MM-DD)", taken))
	}
	if sourceDate != "" {
		sd, err := time.Parse(time.DateOnly, sourceDate)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("source_date %q is not a date (YYYY-MM-DD)", sourceDate))
		case !takenDay.IsZero() && sd.After(takenDay):
			errs = append(errs, fmt.Errorf("source_date %s is after taken %s", sourceDate, taken))
		}
	}
	return errs
}

// checkOutdated checks an outdated entry's explanation, replacements and
// provenance.
func checkOutdated(fo fileOutdated, presets map[string]bool) []error {
	errs := checkProvenance(fo.Source, fo.SourceDate, fo.Taken)
	if !nameRE.MatchString(fo.Provider) {
		errs = append(errs, fmt.Errorf("provider %q is not a lower-case name", fo.Provider))
	}
	if strings.TrimSpace(fo.Why) == "" || strings.TrimSpace(fo.ClaimedAs) == "" {
		errs = append(errs, errors.New("needs claimed_as and why"))
	}
	if len(fo.Current) == 0 {
		errs = append(errs, errors.New("names no current preset"))
	}
	for _, name := range fo.Current {
		if !presets[name] {
			errs = append(errs, fmt.Errorf("current preset %q does not exist", name))
		}
	}
	return errs
}
