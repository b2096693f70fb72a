package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/urfave/cli/v2"
)

// retentionEvery is how often kvreg serve applies the retention rules
// again: keep-pulled-within ages without a write (keep-last is applied by
// each push). Every replica runs it; each repository is one transaction
// that reads what it deletes, so sweeps of several replicas at once
// delete each tag once.
const retentionEvery = 10 * time.Minute

// retentionSweeper runs the retention sweep at startup (rules just
// changed apply at once) and then on a ticker, while the configuration has
// retention rules.
func retentionSweeper(ctx context.Context, h *api.Server, cfg *serveConfig, log *slog.Logger) {
	if len(cfg.policies.RetentionRules()) == 0 {
		return
	}
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		rep, err := h.RetentionSweep(time.Now())
		if err != nil {
			log.Error("retention sweep", "err", err)
		}
		if rep != nil && len(rep.Tags) > 0 {
			log.Info("retention removed tags", "tags", len(rep.Tags), "manifests", len(rep.Manifests), "reclaimed_bytes", rep.ReclaimedBytes)
		}
	}
}

// policiesOf reads the rule sections of a configuration file.
func policiesOf(path string) (*policy.Set, error) {
	fc, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	p := fc.policies()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errConfig, path, err)
	}
	return p, nil
}

// policies is the file's rule sections as a set (nil: none).
func (fc *fileConfig) policies() *policy.Set {
	s := &policy.Set{Immutables: fc.Immutable, Retentions: fc.Retention, Quotas: fc.Quotas}
	if s.Empty() {
		return nil
	}
	return s
}

func retentionCommand() *cli.Command {
	return &cli.Command{
		Name:  "retention",
		Usage: "what the retention rules remove",
		Subcommands: []*cli.Command{{
			Name:  "plan",
			Usage: "list every tag retention would remove now and the exact bytes freed, changing nothing (the sweep's own transaction, rolled back)",
			Description: "Online, through the running server's socket, with the server's rules. Offline, with the rules\n" +
				"of the immutable: and retention: sections of --config (without it there are none).",
			Flags: []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(),
				&cli.StringFlag{Name: "config", Usage: "YAML file of kvreg serve whose immutable and retention sections apply (offline)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON, with the tags, manifests and blobs that would go"},
			},
			Action: func(c *cli.Context) error {
				var rules *policy.Set
				if path := c.String("config"); path != "" {
					var err error
					if rules, err = policiesOf(path); err != nil {
						return cli.Exit("kvreg retention plan: "+err.Error(), 2)
					}
				}
				// Writable: the plan is a write transaction rolled back.
				st, err := openStorePolicies(c, true, rules)
				if err != nil {
					return err
				}
				defer st.close()
				if st.online() && rules != nil {
					fmt.Fprintln(c.App.ErrWriter, "kvreg retention plan: the running server applies its own rules; --config is not read")
				}
				rep, err := ask(st, "GET", "/v1/retention/plan", url.Values{}, func(reg *refcount.Registry) (*refcount.RetentionReport, error) {
					return reg.RetentionPlan()
				})
				if err != nil {
					return cli.Exit("kvreg retention plan: "+err.Error(), 1)
				}
				if c.Bool("json") {
					printJSON(c.App.Writer, rep)
					return nil
				}
				for _, t := range rep.Tags {
					fmt.Fprintln(c.App.Writer, t)
				}
				fmt.Fprintf(c.App.Writer, "retention would remove %s, %s, %s; %d bytes (%s) would be reclaimed\n",
					plural(len(rep.Tags), "tag"), plural(len(rep.Manifests), "manifest"), plural(len(rep.Blobs), "blob"),
					rep.ReclaimedBytes, refcount.HumanBytes(rep.ReclaimedBytes))
				return nil
			},
		}},
	}
}
