// Command kvreg is a container image registry on an embedded database.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "kvreg",
		Usage: "an OCI container registry that frees what nothing references, at once",
		Commands: []*cli.Command{
			serveCommand(),
			fsckCommand(),
			statsCommand(),
			lsCommand(),
			eventsCommand(),
			rmCommand(),
			retentionCommand(),
			tokenCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kvreg:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode: 2 for "could not run", unless the error carries its own.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 2
}
