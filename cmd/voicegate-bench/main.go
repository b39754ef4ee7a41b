// Command voicegate-bench is voicegate's load generator and benchmark
// helpers (a stand-in internal API, the bare baseline handler, the
// header-only flood), kept out of the product binary. See BENCHMARKS.md.
package main

import (
	"context"
	"os"

	"github.com/voicegate/voicegate/internal/benchcmd"
)

func main() {
	os.Exit(benchcmd.Main(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr))
}
