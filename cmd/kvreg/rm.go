package main

import (
	"fmt"
	"net/url"

	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "delete a tag, an image (with its tags) or a whole repository, reclaiming at once",
		ArgsUsage: "REPO[:TAG|@DIGEST]",
		Flags:     []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("kvreg rm: name one REPO, REPO:TAG or REPO@DIGEST", 2)
			}
			target := c.Args().First()
			if _, _, _, err := refcount.ParseTarget(target); err != nil {
				return cli.Exit("kvreg rm: "+err.Error(), 2)
			}
			st, err := openStore(c, true)
			if err != nil {
				return err
			}
			defer st.close()
			rep, err := ask(st, "POST", "/v1/rm", url.Values{"target": {target}}, func(reg *refcount.Registry) (*refcount.RemoveReport, error) {
				return reg.Remove(target)
			})
			if err != nil {
				return cli.Exit("kvreg rm: "+err.Error(), 1)
			}
			if c.Bool("json") {
				printJSON(c.App.Writer, rep)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "removed %s; %s reclaimed\n", target, human(rep.ReclaimedBytes))
			return nil
		},
	}
}
