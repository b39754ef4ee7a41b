// Package cli provides voicegate's command line — serve, simulate, config
// check and version — and, for the separate voicegate-bench binary, the load
// generator's (BenchMain). Everything a command needs comes in as
// arguments (environment, output streams, context), never from globals; the
// end-to-end tests run the real binary.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

const usage = `voicegate — a secure Vapi server-URL gateway for private clouds

Usage:
  voicegate serve [--config FILE | --dev] [--listen ADDR] [--data-dir DIR]
  voicegate simulate --url URL [--scenario call|security|all] [auth flags | --config FILE]
  voicegate config check --config FILE
  voicegate version

Run "voicegate COMMAND -h" for a command's flags.
`

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return exitCode("voicegate", Run(ctx, args, getenv, stdout, stderr), stderr)
}

// exitCode reports err on stderr and maps it to an exit code: 0 for none
// (or -h), 2 for a usage mistake, 1 otherwise.
func exitCode(prog string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %s\n", prog, ue.Msg)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
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

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}
