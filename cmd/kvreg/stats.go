package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "show what the store holds: totals and the largest repositories",
		Flags: []cli.Flag{
			rootFlag(),
			dbFlag(), blobStoreFlag(),
			&cli.IntFlag{Name: "top", Value: 20, Usage: "repositories to list, largest first (0: all)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			st, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer st.close()
			rep, err := ask(st, "GET", "/v1/stats", url.Values{"top": {strconv.Itoa(c.Int("top"))}}, func(reg *refcount.Registry) (*refcount.StatsReport, error) {
				return reg.Stats(c.Int("top"))
			})
			if err != nil {
				return cli.Exit("kvreg stats: "+err.Error(), 2)
			}
			out := c.App.Writer
			if c.Bool("json") {
				printJSON(out, rep)
				return nil
			}
			t := rep.Totals
			fmt.Fprintf(out, "repositories  %d\ntags          %d\nmanifests     %d (%s)\n", t.Repos, t.Tags, t.Manifests, refcount.HumanBytes(t.ManifestBytes))
			fmt.Fprintf(out, "blobs         %d (%s stored)\n", t.Blobs, refcount.HumanBytes(t.BlobBytes))
			fmt.Fprintf(out, "shared        %s referenced by more than one image; dedup ratio %.2f\n", refcount.HumanBytes(t.SharedBytes), rep.DedupRatio)
			fmt.Fprintf(out, "leases        %d pending, holding %d blobs (%s) no image references\n", t.Leases, t.UnreferencedBlobs, refcount.HumanBytes(t.UnreferencedBytes))
			u := rep.BlobStore
			fmt.Fprintf(out, "blob store    %s: blob bytes %s in %d objects, uploads %s, other %s\n",
				refcount.HumanBytes(u.BlobBytes+u.UploadBytes+u.OtherBytes), refcount.HumanBytes(u.BlobBytes), u.BlobObjects, refcount.HumanBytes(u.UploadBytes), refcount.HumanBytes(u.OtherBytes))
			fmt.Fprintf(out, "database      %s\n", refcount.HumanBytes(rep.DBBytes))
			if cs := rep.Cache; cs != nil {
				budget := "no budget"
				if cs.MaxBytes > 0 {
					budget = "budget " + refcount.HumanBytes(cs.MaxBytes)
				}
				fmt.Fprintf(out, "cache         %s in %d images (%d manifests), %s\n", refcount.HumanBytes(cs.Bytes), cs.Images, cs.Manifests, budget)
			}
			printQuotas(out, rep.Quotas)
			if len(rep.Repositories) > 0 {
				fmt.Fprintln(out)
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "REPOSITORY\tTAGS\tMANIFESTS\tBYTES\tUNIQUE\t")
				for _, r := range rep.Repositories {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", r.Name, r.Tags, r.Manifests, refcount.HumanBytes(r.Bytes), refcount.HumanBytes(r.UniqueBytes))
				}
				tw.Flush()
			}
			return nil
		},
	}
}
