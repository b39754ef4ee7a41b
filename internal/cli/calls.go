package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/storage"
)

const callsUsage = `usage: voicegate calls list (--config FILE | --data-dir DIR) [--limit N] [--status S] [--before ID] [--json]
       voicegate calls show ID (--config FILE | --data-dir DIR) [--json]`

// callsTimeFormat is RFC 3339 in UTC with the store's millisecond precision.
const callsTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// runCalls reads the stored calls: their metadata and status timeline, from
// the configured store (see storeFlags.open).
func runCalls(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "calls needs list or show\n" + callsUsage}
	}
	switch args[0] {
	case "list":
		return runCallsList(ctx, args[1:], getenv, stdout, stderr)
	case "show":
		return runCallsShow(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, callsUsage)
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("unknown calls command %q\n%s", args[0], callsUsage)}
}

// storeFlags are where the calls commands find the database.
type storeFlags struct {
	config, dataDir *string
	json            *bool
}

func registerStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		config:  fs.String("config", "", "voicegate config whose data_dir holds the database (only data_dir is read)"),
		dataDir: fs.String("data-dir", "", "the data directory itself (instead of, or overriding, --config)"),
		json:    fs.Bool("json", false, "print JSON for scripts"),
	}
}

// callReader is the store the calls commands read.
type callReader interface {
	calls.Reader
	Close() error
}

// open opens the configured store: with storage.driver postgres the
// shared database (unless --data-dir names a data directory), otherwise
// the SQLite database in the data directory, read-only so that it is safe
// while serve runs on it. --data-dir wins over --config, as it does for
// serve. It also returns where the calls are, for messages.
func (f storeFlags) open(ctx context.Context, cmd string, getenv func(string) string) (callReader, string, error) {
	dir := *f.dataDir
	if dir == "" && *f.config == "" {
		return nil, "", &UsageError{Msg: fmt.Sprintf("calls %s needs --config FILE or --data-dir DIR", cmd)}
	}
	if *f.config != "" {
		cfg, err := config.LoadStorage(*f.config, config.Options{Getenv: getenv})
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", *f.config, err)
		}
		if cfg.Storage.Driver == storage.DriverPostgres && dir == "" {
			db, err := postgres.Open(ctx, cfg.Storage.PostgresURL, postgres.Options{MaxConns: 2})
			if err != nil {
				return nil, "", err
			}
			return db, "PostgreSQL at " + redact.URL(cfg.Storage.PostgresURL), nil
		}
		if dir == "" {
			dir = cfg.DataDir
		}
	}
	db, err := sqlite.OpenReadOnly(ctx, dir)
	if err != nil {
		return nil, "", err
	}
	return db, dir, nil
}

func runCallsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("calls list", stderr)
	sf := registerStoreFlags(fs)
	limit := fs.Int("limit", calls.DefaultListLimit, fmt.Sprintf("the most calls to list, newest first (1 to %d)", calls.MaxListLimit))
	status := fs.String("status", "", "only calls whose current status is this (e.g. in-progress, ended)")
	before := fs.String("before", "", "only calls older than the call with this id (the last one listed: the next page)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > calls.MaxListLimit {
		return &UsageError{Msg: fmt.Sprintf("--limit must be between 1 and %d, got %d", calls.MaxListLimit, *limit)}
	}
	db, dir, err := sf.open(ctx, "list", getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	f := calls.ListFilter{Limit: *limit, Status: *status}
	if *before != "" {
		r, _, err := db.Call(ctx, *before)
		if err != nil {
			return callError(err, *before, dir)
		}
		f.Before, f.BeforeID = r.CreatedAt, r.ID
	}
	list, err := db.List(ctx, f)
	if err != nil {
		return err
	}
	if err := printCallList(stdout, list, *sf.json); err != nil {
		return err
	}
	if len(list) == *limit {
		// Said on stderr, so that --json output stays one document.
		fmt.Fprintf(stderr, "%d calls shown (--limit); older ones, if any: --before %s\n", len(list), text(list[len(list)-1].ID))
	}
	return nil
}

// printCallList prints list as a table, or as a JSON array.
func printCallList(w io.Writer, list []calls.Record, asJSON bool) error {
	if asJSON {
		out := make([]callJSON, len(list))
		for i, r := range list {
			out[i] = toCallJSON(r)
		}
		return writeJSON(w, out)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no calls")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tSTATUS\tENDED REASON\tDURATION\tASSISTANT ID\tPHONE NUMBER ID\tTYPE")
	for _, r := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", text(r.ID), formatTime(r.CreatedAt), text(r.Status), text(r.EndedReason),
			formatSeconds(r.Duration), text(r.AssistantID), text(r.PhoneNumberID), text(r.Type))
	}
	return tw.Flush()
}

func runCallsShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("calls show", stderr)
	sf := registerStoreFlags(fs)
	// The id comes first (calls show ID --config FILE) or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return &UsageError{Msg: fmt.Sprintf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	if id == "" {
		return &UsageError{Msg: "calls show needs a call ID\n" + callsUsage}
	}
	db, dir, err := sf.open(ctx, "show", getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	r, hist, err := db.Call(ctx, id)
	events, eerr := db.Events(ctx, id)
	switch {
	case errors.Is(err, calls.ErrNotFound) && eerr == nil && len(events) > 0:
		// A chat or session (chat:ID, session:ID) has a timeline only.
		r = calls.Record{ID: id}
	case err != nil:
		return callError(err, id, dir)
	case eerr != nil:
		return eerr
	}
	if *sf.json {
		out := callDetailJSON{callJSON: toCallJSON(r), Timeline: make([]statusJSON, len(hist)), Events: make([]eventJSON, len(events))}
		for i, c := range hist {
			out.Timeline[i] = statusJSON{Status: c.Status, At: formatTime(c.At)}
		}
		for i, ev := range events {
			out.Events[i] = eventJSON{At: formatTime(ev.At), Kind: ev.Kind, Detail: ev.Detail}
		}
		return writeJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, f := range [][2]string{
		{"id", text(r.ID)},
		{"org id", text(r.OrgID)},
		{"type", text(r.Type)},
		{"phone number id", text(r.PhoneNumberID)},
		{"assistant id", text(r.AssistantID)},
		{"status", text(r.Status)},
		{"ended reason", text(r.EndedReason)},
		{"cost", formatFloat(r.Cost)},
		{"duration", formatSeconds(r.Duration)},
		{"created", formatTime(r.CreatedAt)},
		{"updated", formatTime(r.UpdatedAt)},
		{"ended", formatTime(r.EndedAt)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], f[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(hist) == 0 && len(events) == 0 {
		fmt.Fprintln(stdout, "timeline: no status changes")
		return nil
	}
	// Status changes and events in one time line (a status first at the
	// same millisecond).
	fmt.Fprintln(stdout, "timeline:")
	for i, j := 0, 0; i < len(hist) || j < len(events); {
		if j == len(events) || (i < len(hist) && !hist[i].At.After(events[j].At)) {
			fmt.Fprintf(stdout, "  %s  %s\n", formatTime(hist[i].At), text(hist[i].Status))
			i++
			continue
		}
		fmt.Fprintf(stdout, "  %s  %s: %s\n", formatTime(events[j].At), text(events[j].Kind), text(events[j].Detail))
		j++
	}
	return nil
}

// callError words a failed lookup of the call id: not found is an answer
// for the operator, not a fault of the store.
func callError(err error, id, dir string) error {
	if errors.Is(err, calls.ErrNotFound) {
		return &notFoundError{id: id, dir: dir}
	}
	return err
}

// notFoundError is an unknown call id; it wraps calls.ErrNotFound.
type notFoundError struct{ id, dir string }

func (e *notFoundError) Error() string { return fmt.Sprintf("no call %s in %s", text(e.id), e.dir) }
func (e *notFoundError) Unwrap() error { return calls.ErrNotFound }

// callJSON is a call record as the calls commands print it with --json.
type callJSON struct {
	ID              string   `json:"id"`
	OrgID           string   `json:"org_id"`
	Type            string   `json:"type"`
	PhoneNumberID   string   `json:"phone_number_id"`
	AssistantID     string   `json:"assistant_id"`
	Status          string   `json:"status"`
	EndedReason     string   `json:"ended_reason"`
	Cost            *float64 `json:"cost"`             // null when unknown
	DurationSeconds *float64 `json:"duration_seconds"` // null when unknown
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
	EndedAt         *string  `json:"ended_at"` // null while the call is live
}

// callDetailJSON is calls show --json: the record and its timeline.
type callDetailJSON struct {
	callJSON
	Timeline []statusJSON `json:"timeline"`
	// Events are what voicegate decided or did during the call (barge-in
	// decisions, call control), in time order.
	Events []eventJSON `json:"events"`
}

type eventJSON struct {
	At     string `json:"at"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

type statusJSON struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

func toCallJSON(r calls.Record) callJSON {
	j := callJSON{ID: r.ID, OrgID: r.OrgID, Type: r.Type, PhoneNumberID: r.PhoneNumberID, AssistantID: r.AssistantID,
		Status: r.Status, EndedReason: r.EndedReason, Cost: r.Cost, DurationSeconds: r.Duration,
		CreatedAt: formatTime(r.CreatedAt), UpdatedAt: formatTime(r.UpdatedAt)}
	if !r.EndedAt.IsZero() {
		e := formatTime(r.EndedAt)
		j.EndedAt = &e
	}
	return j
}

// writeJSON writes v as indented JSON in which every character that is not
// printable (C1 controls such as U+009B, which terminals read as an escape
// sequence; bidirectional overrides such as U+202E) is written as a \u
// escape: the JSON is the same, and a terminal shows it inert.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeControls(buf.Bytes()))
	return err
}

// escapeControls rewrites, in JSON, every character that is not printable
// as a \u escape (control characters inside JSON strings are already
// escaped by encoding/json): the JSON means the same, and a terminal shows
// it inert.
func escapeControls(b []byte) []byte {
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			out.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&out, "\\u%04x", r)
		}
	}
	return out.Bytes()
}

// text prints a stored value in a table: "-" when empty, and quoted (Go
// syntax) when it holds a control or other unprintable character, so that a
// value from a webhook can neither break the table nor send escape
// sequences to the terminal.
func text(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(callsTimeFormat)
}

func formatFloat(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func formatSeconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return formatFloat(v) + "s"
}
