package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// row is one figure of the comparison.
type row struct {
	label  string
	higher bool // higher is better
	get    func(*Result) (float64, bool)
	target string
	// met decides the target from kvreg's figure, the reference's and dd's
	// (nil: no target).
	met func(k, r, dd float64) bool
	// noRef: the target does not depend on the reference's figure.
	noRef bool
}

var rows = []row{
	{label: "push, images/s", higher: true, get: func(r *Result) (float64, bool) { return r.PushImagesPerS, true },
		target: ">= 2x", met: func(k, r, _ float64) bool { return k >= 2*r }},
	{label: "push, MB/s", higher: true, get: func(r *Result) (float64, bool) { return r.PushMBPerS, true }},
	{label: "push latency p50, ms", get: func(r *Result) (float64, bool) { return r.PushP50Ms, true }},
	{label: "push latency p99, ms", get: func(r *Result) (float64, bool) { return r.PushP99Ms, true }},
	{label: "pull, MB/s", higher: true, get: func(r *Result) (float64, bool) { return r.PullMBPerS, true },
		target: ">= 1.2x", met: func(k, r, _ float64) bool { return k >= 1.2*r }},
	{label: "tag list, requests/s", higher: true, get: func(r *Result) (float64, bool) { return r.ListRequestsPerS, true }},
	{label: "HEAD blob, requests/s", higher: true, get: func(r *Result) (float64, bool) { return r.HeadRequestsPerS, true },
		target: ">= 2x", met: func(k, r, _ float64) bool { return k >= 2*r }},
	{label: "large layer push, MB/s", higher: true, get: func(r *Result) (float64, bool) { return r.LargePushMBPerS, r.LargeBytes > 0 }},
	{label: "dd bs=1M conv=fdatasync around the large push, MB/s", higher: true, get: func(r *Result) (float64, bool) { return r.DDMBPerS, r.DDMBPerS > 0 }},
	{label: "large layer push as % of that dd", higher: true, get: func(r *Result) (float64, bool) {
		return 100 * r.LargePushMBPerS / r.DDMBPerS, r.DDMBPerS > 0 && r.LargeBytes > 0
	}, target: ">= 90%", met: func(k, _, _ float64) bool { return k >= 90 }, noRef: true},
	{label: "large layer pull, Go client as `crane blob`, MB/s", higher: true, get: func(r *Result) (float64, bool) { return r.LargePullMBPerS, r.LargeBytes > 0 },
		target: ">= 1x", met: func(k, r, _ float64) bool { return k >= r }},
	{label: "DELETE of half the images, s", get: func(r *Result) (float64, bool) { return r.DeleteSeconds, r.DeletedImages > 0 }},
	{label: "bytes back on disk, from the first DELETE, s", get: func(r *Result) (float64, bool) {
		if r.ReclaimSeconds == nil {
			return 0, false
		}
		return *r.ReclaimSeconds, true
	}},
	{label: "  of which after the last DELETE returned, s", get: func(r *Result) (float64, bool) {
		if r.ReclaimSeconds == nil {
			return 0, false
		}
		return *r.ReclaimSeconds - r.DeleteSeconds, true
	}, target: "~0: when the DELETE returns", met: func(k, _, _ float64) bool { return k < 0.05 }, noRef: true},
	{label: "resident memory after workload, MiB", get: func(r *Result) (float64, bool) { return float64(r.RSSKB) / 1024, r.RSSKB > 0 },
		target: "<= reference", met: func(k, r, _ float64) bool { return k <= r }},
	{label: "  of which anonymous, MiB", get: func(r *Result) (float64, bool) { return float64(r.RSSAnonKB) / 1024, r.RSSKB > 0 }},
	{label: "  of which file-backed, MiB", get: func(r *Result) (float64, bool) { return float64(r.RSSFileKB) / 1024, r.RSSKB > 0 }},
	{label: "peak resident memory, MiB", get: func(r *Result) (float64, bool) { return float64(r.HWMKB) / 1024, r.HWMKB > 0 }},
}

// readResults reads a comma-separated list of result files.
func readResults(paths string) ([]*Result, error) {
	var out []*Result
	for _, p := range strings.Split(paths, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		r, err := readResult(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no result files in %q", paths)
	}
	return out, nil
}

// medianOf is the median of a figure over runs, and whether any run had it.
func medianOf(rs []*Result, get func(*Result) (float64, bool)) (float64, bool) {
	var vs []float64
	for _, r := range rs {
		if v, ok := get(r); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	sort.Float64s(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &r, nil
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Compare prints results side by side as a Markdown table: the median of
// each figure over the runs given, the ratio of the first to the second,
// and the target kvreg sets for each figure.
func Compare(w io.Writer, paths, againstPaths, refName string, ddMBps float64) error {
	if againstPaths == "" {
		return fmt.Errorf("-compare needs -against")
	}
	ks, err := readResults(paths)
	if err != nil {
		return err
	}
	rs, err := readResults(againstPaths)
	if err != nil {
		return err
	}
	kn, rn := ks[0].Name, rs[0].Name
	if kn == "" {
		kn = "A"
	}
	if refName != "" {
		rn = refName
	}
	if rn == "" {
		rn = "B"
	}
	wl, _ := json.Marshal(ks[0].Workload)
	for _, x := range append(append([]*Result(nil), ks...), rs...) {
		if wx, _ := json.Marshal(x.Workload); string(wx) != string(wl) {
			fmt.Fprintf(w, "WARNING: the runs had different workloads:\n  %s\n  %s\n", wl, wx)
		}
	}
	fmt.Fprintf(w, "workload: %s\n", wl)
	if len(ks) > 1 || len(rs) > 1 {
		fmt.Fprintf(w, "figures: the median of %d runs of %s and %d of %s\n", len(ks), kn, len(rs), rn)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| figure | %s | %s | ratio | target | met |\n", kn, rn)
	fmt.Fprintf(w, "|---|---:|---:|---:|---|---|\n")
	for _, row := range append(append([]row(nil), rows...), cpuRows(append(append([]*Result(nil), ks...), rs...))...) {
		kv, kok := medianOf(ks, row.get)
		rv, rok := medianOf(rs, row.get)
		if !kok && !rok {
			continue
		}
		cell := func(v float64, ok bool) string {
			if !ok {
				return "n/a"
			}
			return num(v)
		}
		ratio := "n/a"
		if kok && rok && rv != 0 {
			ratio = fmt.Sprintf("%.2fx", kv/rv)
			if kv/rv < 0.01 {
				ratio = fmt.Sprintf("%.4fx", kv/rv)
			}
		}
		met := ""
		if row.met != nil && kok && (rok || row.noRef) {
			met = "no"
			if row.met(kv, rv, ddMBps) {
				met = "yes"
			}
		}
		better := "lower is better"
		if row.higher {
			better = "higher is better"
		}
		fmt.Fprintf(w, "| %s (%s) | %s | %s | %s | %s | %s |\n", row.label, better, cell(kv, kok), cell(rv, rok), ratio, row.target, met)
	}
	if ddMBps > 0 {
		if kl, ok := medianOf(ks, func(r *Result) (float64, bool) { return r.LargePushMBPerS, r.LargeBytes > 0 }); ok {
			rl, _ := medianOf(rs, func(r *Result) (float64, bool) { return r.LargePushMBPerS, r.LargeBytes > 0 })
			fmt.Fprintf(w, "| large layer push as %% of a separate dd run (%s MB/s) | %.0f%% | %.0f%% | | >= 90%% | |\n",
				num(ddMBps), 100*kl/ddMBps, 100*rl/ddMBps)
		}
	}
	fmt.Fprintln(w)
	for _, x := range append(append([]*Result(nil), ks...), rs...) {
		status := "ok"
		if !x.VerifyOK {
			status = "VERIFY FAILED: " + x.VerifyError
		}
		if len(x.Errors) > 0 {
			status += fmt.Sprintf("; %d error(s), first: %s", len(x.Errors), x.Errors[0])
		}
		extra := ""
		if x.AfterDeleteSeconds != nil {
			extra = fmt.Sprintf(", after-delete command (stop, garbage-collect, restart) took %.2f s", *x.AfterDeleteSeconds)
		}
		if x.ReclaimTimedOut {
			extra += ", the bytes did not come back in time"
		}
		if len(x.LargePullsMBPerS) > 0 {
			ps := make([]string, len(x.LargePullsMBPerS))
			for i, v := range x.LargePullsMBPerS {
				ps[i] = num(v)
			}
			extra += "; large layer pulls " + strings.Join(ps, ", ") + " MB/s"
		}
		rb := int64(0)
		if x.ReclaimedBytes != nil {
			rb = *x.ReclaimedBytes
		}
		fmt.Fprintf(w, "- %s (%s): %s; %d images deleted, %d bytes expected back, %d bytes back%s; whole run %.1f s\n",
			x.Name, x.Started, status, x.DeletedImages, x.ReclaimExpectedBytes, rb, extra, x.TotalSeconds)
	}
	return nil
}

// cpuOrder is the order of the usual groups of -cpu in the table; others
// follow by name.
var cpuOrder = []string{"registry", "S3 server", "database", "balancer", "load tool"}

// cpuRows are the rows of the CPU each group spent per unit of each phase's
// work, for the groups any of rs measured, and each phase's sum over them.
func cpuRows(rs []*Result) []row {
	groups := map[string]bool{}
	for _, r := range rs {
		for _, byGroup := range r.CPUSeconds {
			for g := range byGroup {
				groups[g] = true
			}
		}
	}
	if len(groups) == 0 {
		return nil
	}
	var names []string
	for _, g := range cpuOrder {
		if groups[g] {
			names = append(names, g)
			delete(groups, g)
		}
	}
	var rest []string
	for g := range groups {
		rest = append(rest, g)
	}
	sort.Strings(rest)
	names = append(names, rest...)
	phases := []struct {
		phase, label string
		per          func(*Result) (float64, bool) // units of work, scaled to the label's
	}{
		{"push", "push, CPU ms per image", func(r *Result) (float64, bool) {
			return float64(r.Workload.Images) / 1000, r.Workload.Images > 0
		}},
		{"pull", "pull, CPU ms per 100 MB", func(r *Result) (float64, bool) {
			return float64(r.PullBytes) / 1e8 / 1000, r.PullBytes > 0
		}},
		{"head", "HEAD, CPU µs per request", func(r *Result) (float64, bool) {
			return float64(r.HeadRequests) / 1e6, r.HeadRequests > 0
		}},
	}
	var out []row
	for _, ph := range phases {
		for _, g := range append([]string{""}, names...) {
			label := ph.label + ", all measured"
			if g != "" {
				label = "  " + g
			}
			out = append(out, row{label: label, get: func(r *Result) (float64, bool) {
				byGroup, ok := r.CPUSeconds[ph.phase]
				units, uok := ph.per(r)
				if !ok || !uok {
					return 0, false
				}
				if g == "" {
					var sum float64
					for _, v := range byGroup {
						sum += v
					}
					return sum / units, true
				}
				v, ok := byGroup[g]
				return v / units, ok
			}})
		}
	}
	return out
}
