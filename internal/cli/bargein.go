package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/config"
)

const bargeinUsage = `voicegate bargein eval --cases FILE.jsonl --decisions OUT.jsonl [--config FILE [--language CODE]]`

// runBargein evaluates the barge-in engine on a labelled corpus, offline:
// one decision line per event to --decisions, and precision, recall and
// the cases decided exactly right on stdout.
func runBargein(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "eval" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, bargeinUsage)
			return nil
		}
		return &UsageError{Msg: "bargein needs eval\n" + bargeinUsage}
	}
	fs := newFlagSet("bargein eval", stderr)
	cases := fs.String("cases", "", "the corpus: one case per line (bargein-policy.md, Evaluation)")
	decisions := fs.String("decisions", "", "where to write one decision per event, JSON lines")
	cfgPath := fs.String("config", "", "take the lists and threshold from this configuration's bargein section (default: the policy's)")
	lang := fs.String("language", "", "with --config, the bargein.languages entry to use (default: the default language)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cases == "" || *decisions == "" {
		return &UsageError{Msg: "bargein eval needs --cases FILE and --decisions OUT\n" + bargeinUsage}
	}
	policy := bargein.DefaultPolicy()
	switch {
	case *cfgPath != "":
		bc, err := config.LoadBargein(*cfgPath, config.Options{Getenv: getenv})
		if err != nil {
			return err
		}
		if _, ok := bc.Languages[*lang]; *lang != "" && !ok {
			return &UsageError{Msg: fmt.Sprintf("--language %q is not in %s's bargein.languages", *lang, *cfgPath)}
		}
		policy = bargein.NewEngine(*bc).Policy(*lang)
	case *lang != "":
		return &UsageError{Msg: "--language needs --config\n" + bargeinUsage}
	}
	in, err := os.Open(*cases)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(*decisions)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(f)
	sc, err := policy.Eval(in, out)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *cases, err)
	}
	fmt.Fprintf(stdout, "cases %d, decided exactly right %d\nevents %d: true positives %d, false positives %d, false negatives %d\nprecision %.3f\nrecall %.3f\n",
		sc.Cases, sc.ExactCases, sc.Events, sc.TruePos, sc.FalsePos, sc.FalseNeg, sc.Precision(), sc.Recall())
	return nil
}
