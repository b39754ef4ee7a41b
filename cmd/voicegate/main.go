// Command voicegate is a secure Vapi server-URL gateway for private clouds.
package main

import (
	"context"
	"os"

	"github.com/voicegate/voicegate/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr))
}
