package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kvreg/kvreg/refcount"
)

// printQuotas writes each quota's usage against its limits (stats).
func printQuotas(out io.Writer, qs []refcount.QuotaStat) {
	if len(qs) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUOTA\tBYTES\tOF\tTAGS\tOF\t")
	for _, q := range qs {
		maxBytes, maxTags := "no limit", "no limit"
		if q.MaxBytes > 0 {
			maxBytes = fmt.Sprintf("%s (%.1f%%)", refcount.HumanBytes(q.MaxBytes), 100*float64(q.Bytes)/float64(q.MaxBytes))
		}
		if q.MaxTags > 0 {
			maxTags = fmt.Sprintf("%d (%.1f%%)", q.MaxTags, 100*float64(q.Tags)/float64(q.MaxTags))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t\n", q.Namespace, refcount.HumanBytes(q.Bytes), maxBytes, q.Tags, maxTags)
	}
	tw.Flush()
}
