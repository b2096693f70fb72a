package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/authstore"
	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

// tokenCommand manages robot accounts, whose secrets CI systems log in
// with, and the key that signs kvreg's tokens.
func tokenCommand() *cli.Command {
	store := func() []cli.Flag { return []cli.Flag{rootFlag(), dbFlag(), blobStoreFlag()} }
	return &cli.Command{
		Name:  "token",
		Usage: "manage robot accounts and the token signing key",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a robot account; its secret is printed once, alone on the last line",
				ArgsUsage: "NAME",
				Flags: append(store(),
					&cli.StringFlag{Name: "repos", Usage: "repository patterns it may be granted, comma-separated (team/*,tools)"},
					&cli.StringFlag{Name: "actions", Usage: "actions it may be granted: pull, push, delete, comma-separated"},
					&cli.StringFlag{Name: "expires", Usage: "its lifetime: days (90d) or a duration (720h)"}),
				Action: tokenCreate,
			},
			{
				Name:   "ls",
				Usage:  "list robot accounts (never their secrets)",
				Flags:  append(store(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: tokenList,
			},
			{
				Name:      "revoke",
				Usage:     "revoke a robot account: it gets no new token; its record stays",
				ArgsUsage: "NAME",
				Flags:     store(),
				Action:    tokenRevoke,
			},
			{
				Name:   "rotate-key",
				Usage:  "make a new token signing key current; the previous one only verifies the tokens it signed",
				Flags:  append(store(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: tokenRotateKey,
			},
		},
	}
}

func tokenCreate(c *cli.Context) error {
	args, err := argsAndFlags(c)
	if err != nil {
		return cli.Exit("kvreg token create: "+err.Error(), 2)
	}
	if len(args) != 1 {
		return cli.Exit("kvreg token create: name one robot: kvreg token create NAME --repos GLOB[,GLOB] --actions pull[,push][,delete] --expires 90d", 2)
	}
	name := args[0]
	for _, f := range []string{"repos", "actions", "expires"} {
		if c.String(f) == "" {
			return cli.Exit(fmt.Sprintf("kvreg token create: --%s is required", f), 2)
		}
	}
	spec, err := authstore.ParseRobotSpec(name, c.String("repos"), c.String("actions"), c.String("expires"))
	if err != nil {
		return cli.Exit("kvreg token create: "+err.Error(), 2)
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.close()
	q := url.Values{"name": {name}, "repos": {c.String("repos")}, "actions": {c.String("actions")}, "expires": {c.String("expires")}}
	rep, err := ask(st, "POST", "/v1/token/create", q, func(reg *refcount.Registry) (authstore.NewRobot, error) {
		return authstore.CreateRobot(reg.DB(), spec, reg.Clock())
	})
	if err != nil {
		return cli.Exit("kvreg token create: "+err.Error(), 1)
	}
	r := rep.Robot
	fmt.Fprintf(c.App.Writer, "robot %s may %s on %s until %s; its secret, shown this once:\n",
		r.Name, strings.Join(r.Actions, ","), strings.Join(r.Repos, ","), stamp(&r.Expires))
	fmt.Fprintln(c.App.Writer, rep.Secret)
	return nil
}

func tokenList(c *cli.Context) error {
	st, err := openStore(c, false)
	if err != nil {
		return err
	}
	defer st.close()
	rep, err := ask(st, "GET", "/v1/token/ls", nil, func(reg *refcount.Registry) ([]authstore.RobotInfo, error) {
		return authstore.Robots(reg.DB())
	})
	if err != nil {
		return cli.Exit("kvreg token ls: "+err.Error(), 2)
	}
	if c.Bool("json") {
		printJSON(c.App.Writer, rep)
		return nil
	}
	return printRobots(c.App.Writer, rep, time.Now())
}

// printRobots writes the table of kvreg token ls; STATUS is what a login
// at now would meet.
func printRobots(w io.Writer, rs []authstore.RobotInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREPOS\tACTIONS\tSTATUS\tCREATED\tEXPIRES\tREVOKED\tLAST USED")
	for _, r := range rs {
		status := "active"
		switch {
		case r.Revoked != nil:
			status = "revoked"
		case !now.Before(r.Expires):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.Repos, ","), strings.Join(r.Actions, ","),
			status, stamp(&r.Created), stamp(&r.Expires), stamp(r.Revoked), stamp(r.LastUsed))
	}
	return tw.Flush()
}

// stamp prints a time to the minute, UTC; "-" for none.
func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func tokenRevoke(c *cli.Context) error {
	args, err := argsAndFlags(c)
	if err != nil {
		return cli.Exit("kvreg token revoke: "+err.Error(), 2)
	}
	if len(args) != 1 {
		return cli.Exit("kvreg token revoke: name one robot", 2)
	}
	name := args[0]
	if err := auth.ValidRobotName(name); err != nil {
		return cli.Exit("kvreg token revoke: "+err.Error(), 2)
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.close()
	rep, err := ask(st, "POST", "/v1/token/revoke", url.Values{"name": {name}}, func(reg *refcount.Registry) (authstore.RobotInfo, error) {
		return authstore.RevokeRobot(reg.DB(), name, reg.Clock())
	})
	if err != nil {
		return cli.Exit("kvreg token revoke: "+err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "robot %s revoked at %s\n", rep.Name, stamp(rep.Revoked))
	return nil
}

func tokenRotateKey(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("kvreg token rotate-key: takes no arguments", 2)
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.close()
	rep, err := ask(st, "POST", "/v1/token/rotate-key", nil, func(reg *refcount.Registry) (authstore.Rotation, error) {
		return authstore.RotateKey(reg.DB(), authstore.NewSigningKey, reg.Clock())
	})
	if err != nil {
		return cli.Exit("kvreg token rotate-key: "+err.Error(), 1)
	}
	if c.Bool("json") {
		printJSON(c.App.Writer, rep)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "signing key %s is current\n", rep.Current.KID)
	for _, k := range rep.Retired {
		fmt.Fprintf(c.App.Writer, "signing key %s retired: it verifies the tokens it signed until they expire\n", k.KID)
	}
	return nil
}

// argsAndFlags reads the command's flags written after its first
// argument (kvreg token create NAME --repos ...), which the command line
// parser leaves among the arguments, sets them as if written before it,
// and returns the arguments that are left.
func argsAndFlags(c *cli.Context) ([]string, error) {
	if c.NArg() < 2 {
		return c.Args().Slice(), nil
	}
	fs := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if _, ok := f.(*cli.StringFlag); ok {
			for _, n := range f.Names() {
				fs.String(n, "", "")
			}
		}
	}
	if err := fs.Parse(c.Args().Tail()); err != nil {
		return nil, err
	}
	var err error
	fs.Visit(func(f *flag.Flag) { err = errors.Join(err, c.Set(f.Name, f.Value.String())) })
	return append([]string{c.Args().First()}, fs.Args()...), err
}
