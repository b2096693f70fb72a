package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

// fileEndpoint is one entry of the YAML file's events section:
//
//	events:
//	  - name: deployer
//	    url: http://127.0.0.1:9000/hook
//	    format: distribution                      # or cloudevents
//	    secret-file: /etc/kvreg/deployer.secret   # HMAC-SHA256 key of X-Kvreg-Signature
//	    actions: [push, tag, delete]              # and pull (off unless listed)
//	    repos: ["*"]
//	    timeout: 5s
type fileEndpoint struct {
	Name       string   `yaml:"name"`
	URL        string   `yaml:"url"`
	Format     string   `yaml:"format"`
	SecretFile string   `yaml:"secret-file"`
	Actions    []string `yaml:"actions"`
	Repos      []string `yaml:"repos"`
	Timeout    string   `yaml:"timeout"`
}

// readEvents checks the events section and reads each endpoint's secret.
func readEvents(path string, fes []fileEndpoint) ([]events.Endpoint, error) {
	var out []events.Endpoint
	for i, fe := range fes {
		ep := events.Endpoint{Name: fe.Name, URL: fe.URL, Format: fe.Format, Actions: fe.Actions, Repos: fe.Repos}
		if fe.Timeout != "" {
			d, err := time.ParseDuration(fe.Timeout)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: events[%d] (%s): timeout %q: %v", errConfig, path, i, fe.Name, fe.Timeout, err)
			}
			ep.Timeout = d
		}
		if fe.SecretFile != "" {
			b, err := os.ReadFile(fe.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: events[%d] (%s): %w", errConfig, path, i, fe.Name, err)
			}
			if ep.Secret = bytes.TrimSpace(b); len(ep.Secret) == 0 {
				return nil, fmt.Errorf("%w: %s: events[%d] (%s): secret file %s is empty", errConfig, path, i, fe.Name, fe.SecretFile)
			}
		}
		if err := ep.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: events[%d]: %w", errConfig, path, i, err)
		}
		out = append(out, ep)
	}
	if _, err := events.Refcount(out); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errConfig, path, err)
	}
	return out, nil
}

// eventEndpoints are the endpoints as refcount writes their rows.
func (cfg *serveConfig) eventEndpoints() []refcount.Endpoint {
	eps, _ := events.Refcount(cfg.events) // checked by readEvents
	return eps
}

// startEvents makes the delivery of the configured endpoints, its series
// on the server's /metrics; nil when there are none.
func startEvents(cfg *serveConfig, reg *refcount.Registry, h *api.Server, log *slog.Logger) (*events.Delivery, error) {
	warnStrandedEvents(reg, cfg.events, log)
	if len(cfg.events) == 0 {
		return nil, nil
	}
	o := events.Options{Source: events.Source{Addr: cfg.addr}, Logger: log}
	if !cfg.replicas {
		// The database's write lock makes this process the only one: a
		// claim that one killed before it left is its own, taken back at
		// once rather than when it expires.
		o.Owner, o.Source.InstanceID = "kvreg", events.ProcessID()
	}
	d, err := events.New(reg, cfg.events, o)
	if err != nil {
		return nil, err
	}
	return d, h.RegisterCollector(d)
}

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "events waiting for delivery",
		Subcommands: []*cli.Command{{
			Name:  "ls",
			Usage: "list pending and failed deliveries per endpoint, oldest first",
			Flags: []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"},
				&cli.IntFlag{Name: "max", Value: 100, Usage: "rows shown per endpoint (0: all)"}},
			Action: func(c *cli.Context) error {
				st, err := openStore(c, false)
				if err != nil {
					return err
				}
				defer st.close()
				max := c.Int("max")
				rep, err := ask(st, "GET", "/v1/events", url.Values{"max": {strconv.Itoa(max)}}, func(reg *refcount.Registry) (*refcount.OutboxReport, error) {
					return reg.Outbox(max)
				})
				if err != nil {
					return cli.Exit("kvreg events ls: "+err.Error(), 2)
				}
				out := c.App.Writer
				if c.Bool("json") {
					printJSON(out, rep)
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ENDPOINT\tSEQ\tID\tACTION\tREPOSITORY\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
				for _, ep := range rep.Endpoints {
					for _, e := range ep.Entries {
						next := "now"
						if !e.Next.IsZero() {
							next = e.Next.Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", ep.Name, e.Seq, e.Event.ID, e.Event.Action, e.Event.Repository, e.Attempts, next, e.LastError)
					}
					if n := ep.Pending - int64(len(ep.Entries)); n > 0 {
						fmt.Fprintf(tw, "%s\t\t(%d more)\t\t\t\t\t\n", ep.Name, n)
					}
				}
				return tw.Flush()
			},
		}, {
			Name:      "drop",
			Usage:     "remove an endpoint's undelivered events: all of them, or those up to a sequence number (kvreg events ls shows them)",
			ArgsUsage: "ENDPOINT",
			Flags: []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"},
				&cli.Uint64Flag{Name: "up-to", Usage: "drop only the events up to this sequence number (0: all)"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("kvreg events drop: one ENDPOINT expected", 2)
				}
				st, err := openStore(c, true)
				if err != nil {
					return err
				}
				defer st.close()
				name, upTo := c.Args().First(), c.Uint64("up-to")
				rep, err := ask(st, "POST", "/v1/events/drop", url.Values{"endpoint": {name}, "up-to": {strconv.FormatUint(upTo, 10)}}, func(reg *refcount.Registry) (*refcount.DropReport, error) {
					return reg.DropEvents(name, upTo)
				})
				if err != nil {
					return cli.Exit("kvreg events drop: "+err.Error(), 2)
				}
				if c.Bool("json") {
					printJSON(c.App.Writer, rep)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "dropped %d event(s) of %s\n", rep.Dropped, rep.Endpoint)
				return nil
			},
		}},
	}
}

// warnStrandedEvents logs the endpoints whose events wait in the outbox
// but that the configuration no longer names: nothing delivers them.
func warnStrandedEvents(reg *refcount.Registry, eps []events.Endpoint, log *slog.Logger) {
	rep, err := reg.Outbox(1)
	if err != nil {
		log.Warn("reading the outbox", "err", err)
		return
	}
	known := map[string]bool{}
	for _, ep := range eps {
		known[ep.Name] = true
	}
	for _, ep := range rep.Endpoints {
		if !known[ep.Name] && ep.Pending > 0 {
			log.Warn("events wait for an endpoint the configuration does not name; nothing delivers them (kvreg events drop removes them)",
				"endpoint", ep.Name, "pending", ep.Pending)
		}
	}
}
