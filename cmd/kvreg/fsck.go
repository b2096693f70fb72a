package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func rootFlag() cli.Flag {
	return &cli.StringFlag{Name: "root", Value: "./data", EnvVars: []string{"KVREG_ROOT"}, Usage: "data directory"}
}

func fsckCommand() *cli.Command {
	return &cli.Command{
		Name:  "fsck",
		Usage: "check the store's invariants (exit 0 clean, 1 problems found, 2 could not run)",
		Flags: []cli.Flag{
			rootFlag(),
			&cli.BoolFlag{Name: "deep", Usage: "also rehash every blob file"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: fsck,
	}
}

type fsckReport struct {
	Root     string             `json:"root"`
	Deep     bool               `json:"deep"`
	Clean    bool               `json:"clean"`
	Problems []refcount.Problem `json:"problems"`
}

func fsck(c *cli.Context) error {
	root := c.String("root")
	if _, err := os.Stat(root); err != nil {
		return cli.Exit("kvreg fsck: "+err.Error(), 2)
	}
	reg, err := refcount.OpenRoot(root, kv.Options{ReadOnly: true, LockTimeout: time.Second}, refcount.Options{})
	if err != nil {
		return cli.Exit("kvreg fsck: "+err.Error(), 2)
	}
	defer reg.Close()
	probs, err := reg.Check(c.Bool("deep"))
	if err != nil {
		return cli.Exit("kvreg fsck: "+err.Error(), 2)
	}
	rep := fsckReport{Root: root, Deep: c.Bool("deep"), Clean: len(probs) == 0, Problems: probs}
	if rep.Problems == nil {
		rep.Problems = []refcount.Problem{}
	}
	out := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, p := range probs {
			fmt.Fprintln(out, p.String())
		}
		if rep.Clean {
			fmt.Fprintf(out, "%s: clean\n", root)
		} else {
			fmt.Fprintf(out, "%s: %d problem(s)\n", root, len(probs))
		}
	}
	if !rep.Clean {
		return cli.Exit("", 1)
	}
	return nil
}
