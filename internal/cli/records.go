package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/voicegate/voicegate/internal/records"
)

const recordsUsage = `voicegate records list   (--call ID | --caller NUMBER) (--config FILE | --data-dir DIR)
voicegate records show   RECORD_ID (--config FILE | --data-dir DIR)
voicegate records export (--call ID | --caller NUMBER) [--redacted] (--config FILE | --data-dir DIR)
voicegate records purge  (--call ID | --caller NUMBER) (--config FILE | --data-dir DIR)
voicegate records expire --config FILE   (delete what is past records.retention now)`

// runRecords reads, exports and purges the protected records. Every read
// and every purge is appended to the audit log first: a read that cannot
// be audited is not made.
func runRecords(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "records needs list, show, export, purge or expire\n" + recordsUsage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, recordsUsage)
		return nil
	case "list", "show", "export", "purge", "expire":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown records command %q\n%s", sub, recordsUsage)}
	}
	fs := newFlagSet("records "+sub, stderr)
	cfgPath := fs.String("config", "", "voicegate config (only data_dir, storage and records are read)")
	dataDir := fs.String("data-dir", "", "the data directory (instead of, or overriding, --config)")
	callID := fs.String("call", "", "the call whose records to list, export or purge")
	caller := fs.String("caller", "", "the caller (phone number, E.164 as Vapi reports it) whose calls' records to list, export or purge")
	redactedOnly := fs.Bool("redacted", false, "export: the redacted copies only (records.redaction copy), never the originals")
	var id string
	if sub == "show" {
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			return &UsageError{Msg: "records show needs a RECORD_ID (see voicegate records list)"}
		}
		id, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	switch {
	case *redactedOnly && sub != "export":
		return &UsageError{Msg: "--redacted is for records export"}
	case sub == "show" || sub == "expire":
		if *callID != "" || *caller != "" {
			return &UsageError{Msg: "records " + sub + " takes no --call or --caller"}
		}
	case (*callID == "") == (*caller == ""):
		return &UsageError{Msg: "records " + sub + " needs one of --call ID or --caller NUMBER"}
	case *caller != "" && !strings.HasPrefix(records.NormalizeNumber(*caller), "+"):
		fmt.Fprintf(stderr, "warning: %q is not in E.164 form (+14155550100): it matches only calls whose number Vapi reported exactly so\n", sanitize(*caller))
	}
	o, err := openRecords(ctx, *cfgPath, *dataDir, "records "+sub, getenv)
	if err != nil {
		return err
	}
	defer o.close()
	st := o.writer.Store()
	// What the audit log names: the call, or the caller by keyed hash
	// (never the number).
	subject := *callID
	if *caller != "" {
		subject = "caller:" + o.writer.CallerHash(*caller)
	}
	// recordsOf reads the records of the call, or of every call of the
	// caller.
	recordsOf := func() ([]records.Sealed, error) {
		ids := []string{*callID}
		if *caller != "" {
			var err error
			if ids, err = st.CallerCalls(ctx, o.writer.CallerHash(*caller)); err != nil {
				return nil, err
			}
			sort.Strings(ids)
		}
		var list []records.Sealed
		for _, id := range ids {
			rs, err := st.CallRecords(ctx, id)
			if err != nil {
				return nil, err
			}
			list = append(list, rs...)
		}
		return list, nil
	}
	switch sub {
	case "list":
		if err := o.audit(ctx, "records.list", subject, ""); err != nil {
			return err
		}
		list, err := recordsOf()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RECORD\tCALL\tKIND\tCREATED\tKEY")
		for _, r := range list {
			key := r.Key.KeyID
			if key == "" {
				key = "(purged)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", text(r.ID), text(r.CallID), text(string(r.Kind)), formatTime(r.CreatedAt), text(key))
		}
		return tw.Flush()
	case "show":
		r, err := st.GetRecord(ctx, id)
		if err != nil {
			return fmt.Errorf("record %s: %w", text(id), err)
		}
		if err := o.audit(ctx, "records.read", r.ID, "call "+r.CallID); err != nil {
			return err
		}
		b, err := o.writer.Open(ctx, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "record %s of call %s, %s, %s\n", text(r.ID), text(r.CallID), text(string(r.Kind)), formatTime(r.CreatedAt))
		if r.Kind == records.KindEndOfCall {
			var m struct {
				Transcript string `json:"transcript"`
				Artifact   struct {
					Transcript string `json:"transcript"`
				} `json:"artifact"`
			}
			if json.Unmarshal(b, &m) == nil {
				t := m.Artifact.Transcript
				if t == "" {
					t = m.Transcript
				}
				fmt.Fprintf(stdout, "transcript:\n%s\n", sanitize(t))
			}
		}
		return writeJSON(stdout, json.RawMessage(b))
	case "export":
		list, err := recordsOf()
		if err != nil {
			return err
		}
		detail := fmt.Sprintf("%d record(s)", len(list))
		if *redactedOnly {
			detail += ", redacted copies only"
		}
		if err := o.audit(ctx, "records.export", subject, detail); err != nil { // before any is opened
			return err
		}
		for _, r := range list {
			line := map[string]any{"id": r.ID, "call_id": r.CallID, "kind": r.Kind, "created_at": formatTime(r.CreatedAt)}
			if !*redactedOnly {
				if b, err := o.writer.Open(ctx, r); err != nil {
					line["error"] = err.Error()
				} else {
					line["content"] = json.RawMessage(b)
				}
			}
			if len(r.Redacted) > 0 || *redactedOnly {
				if b, err := o.writer.OpenRedacted(ctx, r); err != nil {
					line["redacted_error"] = err.Error()
				} else {
					line["redacted"] = json.RawMessage(b)
				}
			}
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			if _, err := stdout.Write(append(escapeControls(b), '\n')); err != nil {
				return err
			}
		}
		return nil
	case "purge":
		if *caller != "" {
			// Recorded first: a purge that cannot be audited is not made.
			if err := o.audit(ctx, "records.purge", subject, "destroying the record keys of the caller's calls"); err != nil {
				return err
			}
			calls, n, err := o.writer.PurgeCaller(ctx, *caller)
			for _, id := range calls {
				fmt.Fprintf(stdout, "call %s erased\n", text(id))
			}
			if err != nil {
				return err
			}
			if len(calls) == 0 {
				fmt.Fprintf(stdout, "caller %s: no call with a record of this number, nothing erased (check the number's form; records written before voicegate kept caller hashes cannot be found by number: purge them with --call)\n", subject)
				return nil
			}
			fmt.Fprintf(stdout, "caller %s: %d call(s) erased, their secrets and %d record key(s) destroyed; their records can no longer be opened, not even from an earlier copy of the database\n", subject, len(calls), n)
			return nil
		}
		if err := o.audit(ctx, "records.purge", *callID, "destroying the call's record keys"); err != nil {
			return err
		}
		n, err := o.writer.Purge(ctx, *callID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "call %s erased: its secret and %d record key(s) destroyed; its records can no longer be opened, not even from an earlier copy of the database\n", text(*callID), n)
	case "expire":
		periods := o.cfg.Records.Retention.Periods()
		if len(periods) == 0 {
			return fmt.Errorf("records.retention sets no period in the configuration: nothing expires")
		}
		res, err := o.writer.Expire(ctx, periods)
		if aerr := o.audit(ctx, "records.retention", "", res.String()); aerr != nil && err == nil {
			err = aerr
		}
		fmt.Fprintf(stdout, "deleted %d end-of-call report(s) and %d tool call record(s) past their retention; %d call(s) without records for 12 hours had their secret destroyed\n",
			res.Records[records.KindEndOfCall], res.Records[records.KindToolCall], res.Calls)
		return err
	}
	return nil
}

// sanitize makes free text safe for a terminal: every character that is
// not printable, but the newline and tab, is written as \uXXXX.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}
