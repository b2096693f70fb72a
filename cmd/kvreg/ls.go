package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list repositories, or a repository's tags",
		ArgsUsage: "[REPO]",
		Flags:     []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			st, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer st.close()
			repo := c.Args().First()
			rep, err := ask(st, "GET", "/v1/ls", url.Values{"repo": {repo}}, func(reg *refcount.Registry) (*refcount.ListReport, error) {
				return reg.List(repo)
			})
			if err != nil {
				return cli.Exit("kvreg ls: "+err.Error(), 2)
			}
			out := c.App.Writer
			if c.Bool("json") {
				printJSON(out, rep)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if repo == "" {
				fmt.Fprintln(tw, "REPOSITORY\tTAGS\tMANIFESTS\tBYTES")
				for _, r := range rep.Repositories {
					name := r.Name
					if r.Cached {
						name += " (cached)"
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", name, r.Tags, r.Manifests, refcount.HumanBytes(r.Bytes))
				}
			} else if rep.Cached {
				fmt.Fprintln(tw, "TAG\tDIGEST\tSIZE\tAGE\tPULLED")
				for _, t := range rep.Tags {
					pulled := "never"
					if !t.Pulled.IsZero() {
						pulled = age(time.Since(t.Pulled)) + " ago"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Tag, t.Digest, refcount.HumanBytes(t.Size), age(time.Since(t.Created)), pulled)
				}
			} else {
				fmt.Fprintln(tw, "TAG\tDIGEST\tSIZE\tAGE")
				for _, t := range rep.Tags {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Tag, t.Digest, refcount.HumanBytes(t.Size), age(time.Since(t.Created)))
				}
			}
			return tw.Flush()
		},
	}
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
