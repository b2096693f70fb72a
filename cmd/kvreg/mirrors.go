package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/urfave/cli/v2"
)

// fileMirror is one entry of the YAML file's mirrors section.
type fileMirror struct {
	Prefix       string `yaml:"prefix"`
	Upstream     string `yaml:"upstream"`
	Registry     string `yaml:"registry"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password-file"`
	Recheck      string `yaml:"recheck"`
	Default      bool   `yaml:"default"`
}

// mirrorFlags are the flags of the simple case: mirrors without
// credentials, on the command line or in the environment.
func mirrorFlags() []cli.Flag {
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	dur := func(name string, value time.Duration, usage string) cli.Flag {
		return &cli.DurationFlag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	i64 := func(name string, value int64, usage string) cli.Flag {
		return &cli.Int64Flag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "mirror", EnvVars: envName("mirror"), Usage: "PREFIX=URL: cache the upstream registry at URL in repositories PREFIX/... (a pull-through cache; repeatable; the YAML file's mirrors section has more: credentials, recheck, registry)"},
		str("mirror-default", "", "the PREFIX of the mirror that also serves names no local repository and no prefix has (dockerd's registry-mirrors asks /v2/library/...)"),
		dur("mirror-recheck", api.DefaultRecheck, "how long a cached tag is served before the upstream is asked again (mirrors given by --mirror)"),
		i64("cache-max-bytes", 0, "the byte budget of cached content: the least recently pulled cached images are evicted beyond it (0: no budget)"),
	}
}

// resolveMirrors reads the file's mirrors and the flags' into cfg.mirrors,
// checked.
func (cfg *serveConfig) resolveMirrors(c *cli.Context, fromFile []fileMirror) error {
	var ms []api.Mirror
	for i, fm := range fromFile {
		m := api.Mirror{Prefix: fm.Prefix, URL: fm.Upstream, Registry: fm.Registry, Username: fm.Username, Password: fm.Password, Default: fm.Default}
		if fm.PasswordFile != "" {
			if fm.Password != "" {
				return fmt.Errorf("%w: mirrors[%d]: password and password-file both given", errConfig, i)
			}
			b, err := os.ReadFile(fm.PasswordFile)
			if err != nil {
				return fmt.Errorf("%w: mirrors[%d]: %w", errConfig, i, err)
			}
			m.Password = strings.TrimRight(string(b), "\r\n")
		}
		if (m.Username == "") != (m.Password == "") {
			return fmt.Errorf("%w: mirrors[%d]: username and password go together", errConfig, i)
		}
		if fm.Recheck != "" {
			d, err := time.ParseDuration(fm.Recheck)
			if err != nil {
				return fmt.Errorf("%w: mirrors[%d]: recheck: %w", errConfig, i, err)
			}
			m.Recheck = d
		}
		ms = append(ms, m)
	}
	for _, f := range c.StringSlice("mirror") {
		prefix, u, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%w: --mirror %q: want PREFIX=URL", errConfig, f)
		}
		ms = append(ms, api.Mirror{Prefix: prefix, URL: u, Recheck: c.Duration("mirror-recheck")})
	}
	if d := c.String("mirror-default"); d != "" {
		found := false
		for i := range ms {
			if ms[i].Prefix == d {
				ms[i].Default, found = true, true
			}
		}
		if !found {
			return fmt.Errorf("%w: --mirror-default %q: no mirror has that prefix", errConfig, d)
		}
	}
	checked, err := api.CheckMirrors(ms)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	cfg.mirrors = checked
	cfg.cacheMaxBytes = c.Int64("cache-max-bytes")
	if cfg.cacheMaxBytes < 0 {
		return fmt.Errorf("%w: --cache-max-bytes %d is negative", errConfig, cfg.cacheMaxBytes)
	}
	if cfg.cacheMaxBytes > 0 && len(cfg.mirrors) == 0 {
		return fmt.Errorf("%w: --cache-max-bytes needs a mirror (--mirror or the mirrors section)", errConfig)
	}
	return nil
}

// cachePrefixes are the mirrors' prefixes: repositories under them are
// cached ones. Never nil: the server records them (none, too) for the
// operator commands.
func (cfg *serveConfig) cachePrefixes() []string {
	out := []string{}
	for _, m := range cfg.mirrors {
		out = append(out, m.Prefix)
	}
	return out
}
