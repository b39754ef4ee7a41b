// Package cli provides voicegate's command line: serve, simulate, calls,
// keys, records, audit, redact, twilio sign|verify, vapi sign|verify|plan|apply, netpolicy, config check and version (the load generator's is internal/benchcmd). Everything a command needs comes in as
// arguments (environment, output streams, context), never from globals; the
// end-to-end tests run the real binary.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/voicegate/voicegate/internal/cli/clikit"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// UsageError is a command-line mistake (exit code 2).
type UsageError = clikit.UsageError

const usage = `voicegate — a secure Vapi server-URL gateway for private clouds

Usage:
  voicegate serve [--config FILE | --dev] [--listen ADDR] [--data-dir DIR]
  voicegate simulate --url URL [--scenario call|security|all] [auth flags | --config FILE]
  voicegate simulate --url SERVER --config FILE --scenario twilio-call|twilio-security|twilio [--twilio-number N] [--effects]
  voicegate config check --config FILE
  voicegate calls list (--config FILE | --data-dir DIR) [--limit N] [--status S] [--before ID] [--json]
  voicegate calls show ID (--config FILE | --data-dir DIR) [--json]
  voicegate redact [--json] < INPUT
  voicegate bargein eval --cases FILE.jsonl --decisions OUT.jsonl
  voicegate twilio sign|verify --url URL [--param NAME=VALUE]... [--body-file FILE] [--signature SIG] [--token-env NAME]
  voicegate vapi sign|verify --config FILE --body-file FILE [--header 'Name: value']... [--url URL]
  voicegate vapi plan|apply -f DIR --config FILE [--prune] [--overwrite] [--dry-run] [--tools-from-config]
  voicegate netpolicy --format nftables|iptables|ip6tables|aws-sg|k8s [--twilio-edges all|none|EDGE,...] [--no-media] [--vapi] [--webhook-port 443] [--allow CIDR]... [--config FILE]
  voicegate keys list|rotate|rewrap|retire ID (--config FILE | --data-dir DIR)
  voicegate audit verify|list (--config FILE | --data-dir DIR)
  voicegate records list|export|purge --call ID | show RECORD_ID (--config FILE | --data-dir DIR)
  voicegate kb add BASE FILE|DIR... | list [BASE] | search BASE QUERY... | remove BASE NAME... --config FILE
  voicegate secrets status | rotate [--grace 24h] [--resume] [--wait] --config FILE
  voicegate version

Run "voicegate COMMAND -h" for a command's flags.
`

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return clikit.ExitCode("voicegate", Run(ctx, args, getenv, stdout, stderr), stderr)
}

// Run dispatches to a subcommand.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return &UsageError{Msg: "no command given"}
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, getenv, stdout, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			return &UsageError{Msg: "usage: voicegate config check --config FILE"}
		}
		return runConfigCheck(rest[1:], getenv, stdout, stderr)
	case "calls":
		return runCalls(ctx, rest, getenv, stdout, stderr)
	case "redact":
		return runRedactCommand(rest, stdout, stderr)
	case "bargein":
		return runBargein(rest, getenv, stdout, stderr)
	case "twilio":
		return runTwilio(rest, getenv, stdout, stderr)
	case "vapi":
		return runVapi(ctx, rest, getenv, stdout, stderr)
	case "netpolicy":
		return runNetpolicy(rest, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "records":
		return runRecords(ctx, rest, getenv, stdout, stderr)
	case "kb":
		return runKB(ctx, rest, getenv, stdout, stderr)
	case "secrets":
		return runSecrets(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "voicegate", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &UsageError{Msg: fmt.Sprintf("unknown command %q", cmd)}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("voicegate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error { return clikit.ParseFlags(fs, args) }
