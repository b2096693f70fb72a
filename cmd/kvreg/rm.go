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
		Flags: []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON, with the tags, manifests and blobs removed"},
			&cli.BoolFlag{Name: "dry-run", Usage: "change nothing: say what would be removed and how many bytes reclaimed, computed by the delete's own transaction, rolled back"},
		},
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
			dry := c.Bool("dry-run")
			q := url.Values{"target": {target}}
			if dry {
				q.Set("dry-run", "1")
			}
			rep, err := ask(st, "POST", "/v1/rm", q, func(reg *refcount.Registry) (*refcount.RemoveReport, error) {
				if dry {
					return reg.RemovePlan(target)
				}
				return reg.Remove(target)
			})
			if err != nil {
				return cli.Exit("kvreg rm: "+err.Error(), 1)
			}
			if c.Bool("json") {
				printJSON(c.App.Writer, rep)
				return nil
			}
			if dry {
				fmt.Fprintf(c.App.Writer, "would remove %s (%s); %d bytes (%s) would be reclaimed\n",
					target, counts(rep), rep.ReclaimedBytes, refcount.HumanBytes(rep.ReclaimedBytes))
				return nil
			}
			fmt.Fprintf(c.App.Writer, "removed %s (%s); %d bytes (%s) reclaimed\n",
				target, counts(rep), rep.ReclaimedBytes, refcount.HumanBytes(rep.ReclaimedBytes))
			return nil
		},
	}
}

// counts says how many tags, manifests and blobs a removal names.
func counts(rep *refcount.RemoveReport) string {
	return fmt.Sprintf("%s, %s, %s", plural(len(rep.Tags), "tag"), plural(len(rep.Manifests), "manifest"), plural(len(rep.Blobs), "blob"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
