// Command streamjoin joins Kafka user and organization event streams into
// PostgreSQL and serves the result over HTTP. See `streamjoin --help`.
package main

import (
	"os"

	"github.com/streamjoin/streamjoin/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
