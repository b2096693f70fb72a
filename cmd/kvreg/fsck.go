package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func rootFlag() cli.Flag {
	return &cli.StringFlag{Name: "root", Value: "./data", EnvVars: []string{"KVREG_ROOT"}, Usage: "data directory"}
}

// dbUsage explains --db, which kvreg serve and the operator commands share.
const dbUsage = "the metadata database: empty for the bbolt file <root>/kvreg.db, a path for a bbolt file there, " +
	"or a postgres:// (postgresql://) URL for PostgreSQL"

func dbFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", EnvVars: []string{"KVREG_DB"}, Usage: dbUsage}
}

// blobStoreUsage explains --blob-store, shared like --db.
const blobStoreUsage = "where blob bytes live: empty for <root>/blobs, a directory, or " +
	"s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=true for an S3 bucket " +
	"(credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the other usual AWS ways)"

func blobStoreFlag() cli.Flag {
	return &cli.StringFlag{Name: "blob-store", EnvVars: []string{"KVREG_BLOB_STORE"}, Usage: blobStoreUsage}
}

func fsckCommand() *cli.Command {
	return &cli.Command{
		Name:  "fsck",
		Usage: "check the store's invariants (exit 0 clean or only work pending, 1 problems found, 2 could not run)",
		Description: "Checks that every edge points at an object that exists, every blob record has its file\n" +
			"of its size (--deep: of its digest), no file lacks a record, nothing stored is left that nothing names, every stored count and counter\n" +
			"equals the one recomputed from the edges, and every object nothing references holds a live\n" +
			"lease. Works on a stopped registry and, through its socket, on a running one.\n" +
			"Work a crash interrupted (deletes whose file is still there, uploads caught between\n" +
			"promoting their blob and recording it, the files and strays they left) and leases due\n" +
			"for a sweep are listed as pending, not as problems: the next kvreg serve finishes them,\n" +
			"and so does --repair.",
		Flags: []cli.Flag{
			rootFlag(),
			dbFlag(), blobStoreFlag(),
			&cli.BoolFlag{Name: "deep", Usage: "also rehash every blob file"},
			&cli.BoolFlag{Name: "repair", Usage: "fix what can be fixed without losing data"},
			&cli.BoolFlag{Name: "remove-broken", Usage: "with --repair: also remove manifests and tags whose blobs are missing or corrupt"},
			&cli.DurationFlag{Name: "orphan-grace", Value: refcount.DefaultOrphanGrace,
				Usage: "report (and with --repair remove) objects nothing names only once they are this old: younger ones may be uploads in flight"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: fsck,
	}
}

// fsckReport is what fsck prints. Problems are damage (exit 1, Clean
// false); Pending is work the next start or --repair finishes, which
// leaves Clean true.
type fsckReport struct {
	Root     string                 `json:"root"`
	Deep     bool                   `json:"deep"`
	Clean    bool                   `json:"clean"`
	Problems []refcount.Problem     `json:"problems"`
	Pending  []refcount.Problem     `json:"pending"`
	Repair   *refcount.RepairReport `json:"repair,omitempty"`
	// Finished is, with --repair, the pending work found before the
	// repair that it finished (the store opened for writing finishes it
	// first thing).
	Finished []refcount.Problem `json:"finished,omitempty"`
}

func fsck(c *cli.Context) error {
	deep, repair := c.Bool("deep"), c.Bool("repair")
	grace := c.Duration("orphan-grace")
	var before []refcount.Problem
	if repair {
		var err error
		if before, err = pendingWork(c, grace); err != nil {
			return err
		}
	}
	st, err := openStore(c, repair)
	if err != nil {
		return err
	}
	defer st.close()
	rep := fsckReport{Root: st.root, Deep: deep}
	q := url.Values{"orphan-grace": {grace.String()}}
	if deep {
		q.Set("deep", "1")
	}
	if c.Bool("remove-broken") {
		q.Set("remove-broken", "1")
	}
	if repair {
		rep.Repair, err = ask(st, "POST", "/v1/repair", q, func(reg *refcount.Registry) (*refcount.RepairReport, error) {
			return reg.RepairGrace(deep, c.Bool("remove-broken"), grace)
		})
	} else {
		q.Set("pending", "1")
		var found *refcount.CheckReport
		if st.online() {
			found, err = askFsck(st, q)
		} else {
			found, err = st.reg.Fsck(deep, grace)
		}
		if err == nil {
			rep.Problems, rep.Pending = found.Problems, found.Pending
		}
	}
	if err != nil {
		return cli.Exit("kvreg fsck: "+err.Error(), 2)
	}
	if rep.Repair != nil {
		rep.Problems = rep.Repair.Remaining
		still := map[string]bool{}
		for _, p := range rep.Problems {
			still[p.Kind+" "+p.Object] = true
		}
		for _, p := range before {
			if !still[p.Kind+" "+p.Object] {
				rep.Finished = append(rep.Finished, p)
			}
		}
	}
	if rep.Problems == nil {
		rep.Problems = []refcount.Problem{}
	}
	if rep.Pending == nil {
		rep.Pending = []refcount.Problem{}
	}
	rep.Clean = len(rep.Problems) == 0
	out := c.App.Writer
	if c.Bool("json") {
		printJSON(out, rep)
	} else {
		if rep.Repair != nil {
			for _, p := range rep.Finished {
				fmt.Fprintln(out, "finished:", p.String())
			}
			for _, p := range rep.Repair.Fixed {
				fmt.Fprintln(out, "fixed:", p.String())
			}
			for _, b := range rep.Repair.Broken {
				if rep.Repair.BrokenRemoved {
					fmt.Fprintln(out, "removed broken:", b)
				} else {
					fmt.Fprintln(out, "broken (its content is gone; --remove-broken removes it):", b)
				}
			}
			if rep.Repair.ReclaimedBytes > 0 {
				fmt.Fprintf(out, "reclaimed %s\n", refcount.HumanBytes(rep.Repair.ReclaimedBytes))
			}
		}
		for _, p := range rep.Problems {
			fmt.Fprintln(out, p.String())
		}
		for _, p := range rep.Pending {
			fmt.Fprintln(out, "pending:", p.String())
		}
		summary := "clean"
		if !rep.Clean {
			summary = fmt.Sprintf("%d problem(s)", len(rep.Problems))
		}
		if n := len(rep.Pending); n > 0 {
			items := "items"
			if n == 1 {
				items = "item"
			}
			summary += fmt.Sprintf("; %d %s of interrupted work, not damage: the next `kvreg serve` finishes them, or `kvreg fsck --repair`", n, items)
		}
		fmt.Fprintf(out, "%s: %s\n", st.root, summary)
	}
	if !rep.Clean {
		return cli.Exit("", 1)
	}
	return nil
}

// pendingWork lists the pending work of the store, opened read-only (or
// asked of the running server), so that a repair can say what it finished:
// opening the store for writing finishes it before the repair looks.
func pendingWork(c *cli.Context, grace time.Duration) ([]refcount.Problem, error) {
	quiet := *c.App
	quiet.ErrWriter = io.Discard
	qc := *c
	qc.App = &quiet
	st, err := openStore(&qc, false)
	if err != nil {
		return nil, err
	}
	defer st.close()
	var found *refcount.CheckReport
	q := url.Values{"orphan-grace": {grace.String()}, "pending": {"1"}}
	if st.online() {
		found, err = askFsck(st, q)
	} else {
		found, err = st.reg.Fsck(false, grace)
	}
	if err != nil {
		return nil, cli.Exit("kvreg fsck: "+err.Error(), 2)
	}
	return found.Pending, nil
}

// askFsck asks the running server for its findings, split. A server that
// predates the split answers one list, which is all problems.
func askFsck(st *store, q url.Values) (*refcount.CheckReport, error) {
	var raw json.RawMessage
	if err := st.call("GET", "/v1/fsck", q, &raw); err != nil {
		return nil, err
	}
	rep := &refcount.CheckReport{}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		return rep, json.Unmarshal(raw, &rep.Problems)
	}
	return rep, json.Unmarshal(raw, rep)
}
