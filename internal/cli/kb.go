package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/knowledge/library"
)

const kbUsage = `voicegate kb add    BASE FILE|DIR... --config FILE   (Markdown .md, plain text .txt; a directory's files, recursively; a file added again replaces its earlier version)
voicegate kb list   [BASE] --config FILE
voicegate kb search BASE QUERY... [--limit N] --config FILE   (what an assistant of BASE would be answered)
voicegate kb remove BASE NAME... --config FILE   (NAME as kb list shows it)`

// runKB manages the local knowledge bases' documents. Every change and
// every search is appended to the audit log first (the document's id and
// size, never its name or text, nor the query).
func runKB(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "--") && args[0] != "--help" {
		return &UsageError{Msg: "kb needs add, list, search or remove\n" + kbUsage}
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, kbUsage)
		return nil
	case "add", "list", "search", "remove":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown kb command %q\n%s", sub, kbUsage)}
	}
	flags, pos := splitArgs(args[1:])
	fset := newFlagSet("kb "+sub, stderr)
	cfgPath := fset.String("config", "", "voicegate config (data_dir, storage, records and vapi.knowledge_base are read)")
	limit := fset.Int("limit", knowledge.DefaultMaxDocuments, "search: how many passages")
	if err := parseFlags(fset, flags); err != nil {
		return err
	}
	if *cfgPath == "" {
		return &UsageError{Msg: "kb " + sub + " needs --config FILE (its vapi.knowledge_base.bases name the bases)"}
	}
	switch {
	case sub == "list" && len(pos) > 1:
		return &UsageError{Msg: "kb list takes at most one BASE"}
	case sub == "add" && len(pos) < 2, sub == "remove" && len(pos) < 2:
		return &UsageError{Msg: "kb " + sub + " needs BASE and at least one " + map[string]string{"add": "FILE", "remove": "NAME"}[sub]}
	case sub == "search" && len(pos) < 2:
		return &UsageError{Msg: "kb search needs BASE and a QUERY"}
	case *limit < 1 || *limit > 20:
		return &UsageError{Msg: "--limit must be between 1 and 20"}
	}
	o, err := openRecordsWith(ctx, *cfgPath, "", "kb "+sub, getenv, config.LoadKnowledge)
	if err != nil {
		return err
	}
	defer o.close()
	if o.library == nil {
		return errors.New("this store keeps no knowledge-base documents")
	}
	bases := o.cfg.Vapi.KnowledgeBase.Bases
	var base knowledge.Base
	if len(pos) > 0 {
		b, ok := bases[pos[0]]
		base = b
		switch {
		case ok && b.Local():
		case sub == "list" || sub == "remove":
			// The documents of a base taken out of the config, or now
			// answered by a search API, are personal data still stored:
			// they can be listed and removed.
			fmt.Fprintf(stderr, "note: %q is not a local knowledge base of %s: its documents are no longer answered\n", pos[0], *cfgPath)
		case !ok:
			return fmt.Errorf("no knowledge base %q in %s (vapi.knowledge_base.bases: %s)", pos[0], *cfgPath, strings.Join(sortedNames(bases), ", "))
		default:
			return fmt.Errorf("knowledge base %q is answered by its search API: voicegate keeps no documents for it", pos[0])
		}
	}
	switch sub {
	case "add":
		return kbAdd(ctx, o, pos[0], base.Language, pos[1:], stdout, stderr)
	case "list":
		name := ""
		if len(pos) == 1 {
			name = pos[0]
		}
		if err := o.audit(ctx, "kb.list", "base:"+name, "listed"); err != nil {
			return err
		}
		entries, err := o.library.List(ctx, name)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			fmt.Fprintln(stdout, "no documents")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BASE\tNAME\tPASSAGES\tBYTES\tADDED\tID")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", e.Base, sanitize(e.Name), e.Passages, e.Bytes, e.AddedAt.UTC().Format("2006-01-02 15:04:05Z"), e.ID)
		}
		return tw.Flush()
	case "search":
		if err := o.audit(ctx, "kb.search", "base:"+pos[0], "searched (the query is not recorded)"); err != nil {
			return err
		}
		res, err := o.library.Search(ctx, pos[0], base.Language, strings.Join(pos[1:], " "), *limit)
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintln(stdout, "no passage holds a word of the query")
			return nil
		}
		for i, r := range res {
			fmt.Fprintf(stdout, "%d. %s, passage %d — similarity %.3f (BM25 %.2f), uuid %s\n", i+1, sanitize(r.Document), r.Passage+1, r.Similarity, r.Score, r.UUID)
			for _, line := range strings.Split(r.Content, "\n") {
				fmt.Fprintf(stdout, "   %s\n", sanitize(line))
			}
		}
		return nil
	default: // remove
		failed := 0
		for _, name := range pos[1:] {
			if err := o.audit(ctx, "kb.remove", "base:"+pos[0], "a document removed"); err != nil {
				return err
			}
			ok, err := o.library.Remove(ctx, pos[0], name)
			switch {
			case err != nil:
				return err
			case !ok:
				fmt.Fprintf(stderr, "%s: no such document in %s (see voicegate kb list %s)\n", sanitize(name), pos[0], pos[0])
				failed++
			default:
				fmt.Fprintf(stdout, "removed %s from %s\n", sanitize(name), pos[0])
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d document(s) not found", failed)
		}
		return nil
	}
}

// kbAdd adds files (a directory's Markdown and text files, recursively),
// each under its base name; a file that cannot be read is reported and
// the others still added.
func kbAdd(ctx context.Context, o *opened, base, lang string, paths []string, stdout, stderr io.Writer) error {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				if _, ferr := library.FormatOf(path); ferr == nil {
					found = append(found, path)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(found) == 0 {
			return fmt.Errorf("%s: no Markdown (.md) or text (.txt) file in it", p)
		}
		files = append(files, found...)
	}
	names := map[string]string{}
	for _, f := range files {
		n := filepath.Base(f)
		if prev, ok := names[n]; ok && prev != f {
			return fmt.Errorf("%s and %s have the same name: a document is named by its file's name; rename one", prev, f)
		}
		names[n] = f
	}
	failed := 0
	for _, f := range files {
		format, err := library.FormatOf(f)
		var raw []byte
		if err == nil {
			raw, err = readCapped(f, library.MaxDocumentBytes)
		}
		var a library.Added
		if err == nil {
			if err = o.audit(ctx, "kb.add", "base:"+base, fmt.Sprintf("%d bytes", len(raw))); err != nil {
				return err
			}
			a, err = o.library.Add(ctx, base, lang, filepath.Base(f), raw, format)
			if errors.Is(err, library.ErrStore) {
				return err // the store, not the file: no use going on
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", sanitize(f), err)
			failed++
			continue
		}
		verb := "added"
		if a.Replaced {
			verb = "replaced"
		}
		fmt.Fprintf(stdout, "%s %s in %s: %d passage(s), %d bytes (%s)\n", verb, sanitize(filepath.Base(f)), base, a.Passages, a.Bytes, a.ID)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d file(s) not added", failed, len(files))
	}
	return nil
}

// readCapped reads a regular file of at most max bytes (a FIFO or a
// device named like a document is refused, not read: opening a FIFO
// waits for a writer).
func readCapped(path string, max int64) ([]byte, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

func sortedNames(m map[string]knowledge.Base) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// splitArgs separates flags (and their values) from positional arguments,
// so that flags may come anywhere: every kb flag takes a value.
func splitArgs(args []string) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(pos, args[i+1:]...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && a != "-h" && a != "--help" && a != "-help" {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return flags, pos
}
