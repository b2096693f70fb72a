package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/events"
	blobs3 "github.com/kvreg/kvreg/blobs/s3"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// Every setting of kvreg serve is a flag, an environment variable
// KVREG_<NAME> (the flag's name in capitals, - as _) and a key <name> of
// the YAML file given by --config. The first of these that says something
// wins: flags, then the environment, then the file, then the default.
// Access rules and groups are structured, so they live in the file only.

// envName is the environment variable of a setting.
func envName(flag string) []string {
	return []string{"KVREG_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

const serveDescription = `Serves the OCI distribution API on --addr, with /healthz, /readyz and /metrics beside it.

Settings: every flag below also reads the environment variable shown with it and the key of
the same name in the YAML file given by --config. Precedence: flags, then environment
variables, then the file, then the defaults. Example file:

   addr: 0.0.0.0:5000
   root: /var/lib/kvreg
   db: postgres://kvreg@db.internal/kvreg   # metadata in PostgreSQL (default: <root>/kvreg.db)
   replicas: false                   # true: several kvreg behind a load balancer share db and an s3:// blob-store
   tls-cert: /etc/kvreg/tls.crt
   tls-key: /etc/kvreg/tls.key
   htpasswd: /etc/kvreg/htpasswd      # bcrypt only: htpasswd -B -c FILE USER
   upload-timeout: 24h
   ui: true                          # the web UI at /ui/ (false: off)
   max-blob-bytes: 10737418240
   groups:
     devs: [alice, bob]
   access:                           # rules only grant; what none grants is refused
     - repos: ["*"]                  # * matches anything, / included; ? one character
       users: [admin]
       actions: [pull, push, delete]
     - repos: ["team/*"]
       groups: [devs]
       actions: [pull, push]
     - repos: ["team/*"]
       users: ["*"]                  # every authenticated user
       actions: [pull]
     - repos: ["public/*"]
       anonymous: true               # everyone, without credentials too
       actions: [pull]
   immutable:                        # tags no push, retag or delete may move or remove (403 DENIED)
     - repos: ["prod/*"]             # the first rule whose repos match applies
       tags: ["v*", "release-*"]
   retention:                        # tags removed as a delete removes them, bytes freed at once
     - repos: ["ci/*"]
       keep-last: 10                 # the 10 most recently pushed (applied by each push)
       keep-pulled-within: 720h      # and those pulled within 30 days (a sweep every 10 minutes)
       keep-tags: ["latest"]         # never removed, not counted; immutable tags neither
   quotas:                           # the first rule whose repos match a repository applies
     - repos: ["team-a/*"]           # one namespace: every repository matched, charged together
       max-bytes: 10GiB              # distinct blobs of its manifests + manifest bytes (KB, MiB, GiB...)
       max-tags: 500                 # 0 or absent: no cap
   events:                           # POSTed to each endpoint in commit order, at least once
     - name: deployer
       url: http://127.0.0.1:9000/hook
       format: distribution          # the reference registry's envelope, or cloudevents
       secret-file: /etc/kvreg/deployer.secret   # X-Kvreg-Signature: sha256=<HMAC of the body>
       actions: [push, tag, delete]  # and pull (off unless listed)
       repos: ["*"]

Authentication is on when --htpasswd is given. Without an access section every user may pull,
push and delete everywhere; --anonymous-pull adds anonymous pull of the repositories it names.
--auth-mode token (the default): the Docker registry token flow, which docker, containerd,
podman, skopeo, crane, regctl, oras and helm speak. A request lacking a right gets 401 with a
Bearer challenge naming the token endpoint (/token on this server, or --token-realm) and the scope
it needs; the endpoint hands out short-lived tokens granting the scope asked for as far as the
access rules allow, to anonymous callers too (so docker pulls public repositories with no login).
Basic credentials stay accepted on /v2/. --auth-mode basic: HTTP Basic only; an anonymous caller
lacking a right gets 401, a user 403 DENIED, and GET /v2/ always asks for credentials (that is how
docker login checks them, so docker itself needs a login even for anonymous repositories).
A cross-repository mount only takes blobs from repositories the caller may pull.
/healthz and /readyz never ask for credentials; /metrics does with --metrics-auth.`

func serveFlags() []cli.Flag {
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	dur := func(name string, value time.Duration, usage string) cli.Flag {
		return &cli.DurationFlag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	i64 := func(name string, value int64, usage string) cli.Flag {
		return &cli.Int64Flag{Name: name, Value: value, EnvVars: envName(name), Usage: usage}
	}
	boolean := func(name, usage string) cli.Flag {
		return &cli.BoolFlag{Name: name, EnvVars: envName(name), Usage: usage}
	}
	return append([]cli.Flag{
		str("config", "", "YAML file of settings (keys: the flag names), access rules, groups, mirrors, immutable tags, retention, quotas and events"),
		str("addr", "127.0.0.1:5000", "listen address"),
		str("root", "./data", "data directory"),
		str("db", "", dbUsage),
		str("blob-store", "", blobStoreUsage),
		boolean("replicas", "other kvreg processes share this database and bucket (behind a load balancer): needs a PostgreSQL --db and an s3:// --blob-store; without it kvreg holds the database alone"),
		boolean("blob-redirect", "answer blob GETs with 307 to a presigned URL of the bytes in the S3 bucket, after the usual checks (needs an s3:// --blob-store; HEAD and manifests stay served here)"),
		dur("blob-redirect-ttl", 5*time.Minute, "how long a presigned URL of --blob-redirect stays valid (1s to 168h); one is handed out again while at least half of this is left"),
		str("tls-cert", "", "PEM certificate (chain) to serve HTTPS and HTTP/2; needs --tls-key"),
		str("tls-key", "", "PEM private key of --tls-cert"),
		str("htpasswd", "", "htpasswd file of users (bcrypt hashes only); turns authentication on"),
		&cli.StringSliceFlag{Name: "anonymous-pull", EnvVars: envName("anonymous-pull"), Usage: "repository patterns anyone may pull without credentials (with --htpasswd), e.g. \"public/*\""},
		boolean("metrics-auth", "ask for a user's credentials on /metrics (with --htpasswd)"),
		str("auth-mode", "", "with --htpasswd: token (the Docker registry token flow, served at /token; the default) or basic (HTTP Basic only)"),
		str("token-realm", "", "URL of the token endpoint in challenges (default: this server's /token, from the request's scheme and Host)"),
		str("token-service", "kvreg", "service name of the token flow: the aud of tokens, checked on outside issuers' too"),
		dur("token-ttl", 5*time.Minute, "lifetime of the access tokens /token hands out"),
		dur("token-refresh-ttl", 7*24*time.Hour, "lifetime of the refresh tokens docker login keeps (offline tokens)"),
		str("token-key", "", "PEM (PKCS#8 or SEC 1) P-256 private key that signs tokens (default: one generated at startup)"),
		&cli.StringSliceFlag{Name: "token-issuer", EnvVars: envName("token-issuer"), Usage: "NAME=FILE: also accept tokens whose iss is NAME, signed by a key of FILE (PEM public keys or certificates, or a JWKS); their access claims are taken as they are, their aud must be --token-service (repeatable)"},
		boolean("read-only", "refuse every push and delete (405 UNSUPPORTED)"),
		&cli.BoolFlag{Name: "ui", Value: true, EnvVars: envName("ui"), Usage: "serve the web UI at /ui/ (/ redirects there); --ui=false turns it off"},
		dur("upload-grace", time.Hour, "how long an upload, a mount or a manifest pushed by digest is kept before something references it"),
		dur("pin-window", 10*time.Minute, "how long a HEAD or mount that answered \"exists\" keeps the object for the push that asked"),
		dur("upload-timeout", 24*time.Hour, "upload sessions that receive nothing for this long are removed, and the first URL of an upload that got no bytes is good this long (0: never)"),
		i64("max-manifest-bytes", 4<<20, "largest manifest accepted (413 SIZE_INVALID beyond)"),
		i64("max-blob-bytes", 0, "largest blob accepted, 413 SIZE_INVALID beyond (0: no limit)"),
		i64("max-chunk-bytes", 0, "largest request body of an upload (one chunk, or a whole blob in one request), 413 beyond (0: no limit)"),
		i64("max-uploads-per-client", 32, "upload requests one client (user, or IP address when anonymous) may run at once, 429 TOOMANYREQUESTS beyond (0: no limit)"),
		&cli.StringSliceFlag{Name: "trusted-proxies", EnvVars: envName("trusted-proxies"), Usage: "CIDR[,CIDR...] of load balancers whose X-Forwarded-For names the client (the rightmost address not among them), for --max-uploads-per-client and for the pins of a client's pushes; without it the peer is the client"},
		dur("read-header-timeout", 30*time.Second, "time a client has to send a request's headers"),
		dur("idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open"),
		dur("stall-timeout", time.Minute, "a request or response body that moves no byte for this long is cut off; slow but moving transfers go on (0: never)"),
		dur("shutdown-timeout", 30*time.Second, "on SIGTERM or SIGINT, how long requests in flight may take to finish"),
		str("log-format", "text", "log format: text or json (log/slog, to stderr)"),
		str("log-level", "info", "log level: debug (also health and metrics requests), info (one line per request), warn, error"),
	}, mirrorFlags()...)
}

// serveConfig is every setting, resolved.
type serveConfig struct {
	addr, root, db, blobStore string
	blobRedirect              bool
	replicas                  bool // other processes share the database and bucket
	blobRedirectTTL           time.Duration
	tlsCert, tlsKey           string
	htpasswd                  string
	anonymousPull             []string
	trustedProxies            []netip.Prefix
	metricsAuth, readOnly     bool
	ui                        bool
	authMode                  string // "token" or "basic" with --htpasswd
	tokenRealm, tokenService  string
	tokenTTL, tokenRefreshTTL time.Duration
	tokenKey                  string
	tokenIssuers              []string // NAME=FILE
	tokenFlags                []string // token flags given, refused without --htpasswd
	uploadGrace, pinWindow    time.Duration
	uploadTimeout             time.Duration
	maxManifest, maxBlob      int64
	maxChunk                  int64
	maxUploadsPerClient       int
	readHeaderTimeout         time.Duration
	idleTimeout, stallTimeout time.Duration
	shutdownTimeout           time.Duration
	logFormat, logLevel       string
	access                    []auth.Rule // nil: no access section
	groups                    map[string][]string
	mirrors                   []api.Mirror // checked
	cacheMaxBytes             int64
	policies                  *policy.Set       // the file's rules; nil: none
	events                    []events.Endpoint // checked, secrets read
}

// fileConfig is the YAML file: the structured sections, and every other
// key a setting named like its flag.
type fileConfig struct {
	Access   []auth.Rule          `yaml:"access"`
	Groups   map[string][]string  `yaml:"groups"`
	Mirrors  []fileMirror         `yaml:"mirrors"`
	Events   []fileEndpoint       `yaml:"events"`
	Settings map[string]yaml.Node `yaml:",inline"`

	// The operator's rules on repositories (policy.Set).
	Immutable []policy.Immutable `yaml:"immutable"`
	Retention []policy.Retention `yaml:"retention"`
	Quotas    []policy.Quota     `yaml:"quotas"`
}

var errConfig = errors.New("configuration")

// resolveConfig reads the config file into the flags that neither the
// command line nor the environment set, then reads every setting.
func resolveConfig(c *cli.Context) (*serveConfig, error) {
	cfg := &serveConfig{}
	var fileMirrors []fileMirror
	if path := c.String("config"); path != "" {
		fc, err := readConfigFile(path)
		if err != nil {
			return nil, err
		}
		if err := applyFile(c, path, fc); err != nil {
			return nil, err
		}
		if fc.Access != nil {
			cfg.access = fc.Access
		}
		cfg.groups = fc.Groups
		fileMirrors = fc.Mirrors
		cfg.policies = fc.policies()
		if cfg.events, err = readEvents(path, fc.Events); err != nil {
			return nil, err
		}
	}
	if err := cfg.resolveMirrors(c, fileMirrors); err != nil {
		return nil, err
	}
	cfg.addr, cfg.root, cfg.db = c.String("addr"), c.String("root"), c.String("db")
	cfg.blobStore = c.String("blob-store")
	cfg.blobRedirect, cfg.blobRedirectTTL = c.Bool("blob-redirect"), c.Duration("blob-redirect-ttl")
	cfg.replicas = c.Bool("replicas")
	cfg.tlsCert, cfg.tlsKey = c.String("tls-cert"), c.String("tls-key")
	cfg.htpasswd = c.String("htpasswd")
	cfg.anonymousPull = c.StringSlice("anonymous-pull")
	cfg.metricsAuth, cfg.readOnly = c.Bool("metrics-auth"), c.Bool("read-only")
	cfg.ui = c.Bool("ui")
	cfg.authMode = c.String("auth-mode")
	cfg.tokenRealm, cfg.tokenService = c.String("token-realm"), c.String("token-service")
	cfg.tokenTTL, cfg.tokenRefreshTTL = c.Duration("token-ttl"), c.Duration("token-refresh-ttl")
	cfg.tokenKey, cfg.tokenIssuers = c.String("token-key"), c.StringSlice("token-issuer")
	for _, f := range []string{"auth-mode", "token-realm", "token-service", "token-ttl", "token-refresh-ttl", "token-key", "token-issuer"} {
		if c.IsSet(f) {
			cfg.tokenFlags = append(cfg.tokenFlags, f)
		}
	}
	cfg.uploadGrace, cfg.pinWindow = c.Duration("upload-grace"), c.Duration("pin-window")
	cfg.uploadTimeout = c.Duration("upload-timeout")
	cfg.maxManifest, cfg.maxBlob = c.Int64("max-manifest-bytes"), c.Int64("max-blob-bytes")
	cfg.maxChunk = c.Int64("max-chunk-bytes")
	cfg.maxUploadsPerClient = int(c.Int64("max-uploads-per-client"))
	var err error
	if cfg.trustedProxies, err = parsePrefixes(c.StringSlice("trusted-proxies")); err != nil {
		return nil, err
	}
	cfg.readHeaderTimeout, cfg.idleTimeout = c.Duration("read-header-timeout"), c.Duration("idle-timeout")
	cfg.stallTimeout, cfg.shutdownTimeout = c.Duration("stall-timeout"), c.Duration("shutdown-timeout")
	cfg.logFormat, cfg.logLevel = c.String("log-format"), c.String("log-level")
	return cfg, cfg.check()
}

func readConfigFile(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %w", errConfig, path, err)
	}
	return &fc, nil
}

// applyFile sets, from the file, each flag the command line and the
// environment left alone.
func applyFile(c *cli.Context, path string, fc *fileConfig) error {
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		known[f.Names()[0]] = true
	}
	for key, node := range fc.Settings {
		if !known[key] || key == "config" {
			return fmt.Errorf("%w: %s line %d: unknown setting %q (see kvreg serve --help)", errConfig, path, node.Line, key)
		}
		if c.IsSet(key) {
			continue // a flag or the environment said it
		}
		var values []string
		switch node.Kind {
		case yaml.ScalarNode:
			values = []string{node.Value}
		case yaml.SequenceNode:
			if key != "anonymous-pull" && key != "trusted-proxies" && key != "token-issuer" && key != "mirror" {
				return fmt.Errorf("%w: %s line %d: %s takes one value, not a list", errConfig, path, node.Line, key)
			}
			for _, n := range node.Content {
				if n.Kind != yaml.ScalarNode {
					return fmt.Errorf("%w: %s line %d: %s: a list of strings", errConfig, path, n.Line, key)
				}
				values = append(values, n.Value)
			}
		default:
			return fmt.Errorf("%w: %s line %d: %s: want a value", errConfig, path, node.Line, key)
		}
		for _, v := range values {
			if err := c.Set(key, v); err != nil {
				return fmt.Errorf("%w: %s line %d: %s: %v", errConfig, path, node.Line, key, err)
			}
		}
	}
	return nil
}

// parsePrefixes reads --trusted-proxies: CIDRs, or addresses (one host).
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%w: --trusted-proxies %q: a CIDR (10.0.0.0/8) or an address", errConfig, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// check refuses settings that cannot work together.
func (cfg *serveConfig) check() error {
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errConfig)
	}
	if cfg.htpasswd == "" {
		switch {
		case len(cfg.anonymousPull) > 0:
			return fmt.Errorf("%w: --anonymous-pull needs --htpasswd (without it everyone may do everything)", errConfig)
		case cfg.access != nil || cfg.groups != nil:
			return fmt.Errorf("%w: access rules and groups need --htpasswd", errConfig)
		case len(cfg.tokenFlags) > 0:
			return fmt.Errorf("%w: --%s needs --htpasswd (without it there is no authentication)", errConfig, cfg.tokenFlags[0])
		}
	}
	if err := cfg.checkTokens(); err != nil {
		return err
	}
	if err := cfg.policies.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	if cfg.replicas {
		// Replicas share what they store: a bbolt file or a directory
		// belongs to one process.
		if !kv.IsURL(cfg.db) {
			return fmt.Errorf("%w: --replicas needs a PostgreSQL --db (postgres://...) that every replica shares; got %q", errConfig, cfg.db)
		}
		if !blobs3.IsURL(cfg.blobStore) {
			return fmt.Errorf("%w: --replicas needs an s3:// --blob-store that every replica shares; got %q", errConfig, cfg.blobStore)
		}
	}
	// SigV4 presigns for whole seconds, at most a week.
	if cfg.blobRedirect && (cfg.blobRedirectTTL < time.Second || cfg.blobRedirectTTL > 7*24*time.Hour) {
		return fmt.Errorf("%w: --blob-redirect-ttl %v: between 1s and 168h", errConfig, cfg.blobRedirectTTL)
	}
	switch cfg.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("%w: --log-format %q: text or json", errConfig, cfg.logFormat)
	}
	switch cfg.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%w: --log-level %q: debug, info, warn or error", errConfig, cfg.logLevel)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"upload-timeout", cfg.uploadTimeout}, {"stall-timeout", cfg.stallTimeout}, {"shutdown-timeout", cfg.shutdownTimeout},
		{"read-header-timeout", cfg.readHeaderTimeout}, {"idle-timeout", cfg.idleTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%w: --%s must not be negative", errConfig, d.name)
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"max-manifest-bytes", cfg.maxManifest}, {"max-blob-bytes", cfg.maxBlob}, {"max-chunk-bytes", cfg.maxChunk}, {"max-uploads-per-client", int64(cfg.maxUploadsPerClient)}} {
		if n.v < 0 {
			return fmt.Errorf("%w: --%s must not be negative", errConfig, n.name)
		}
	}
	return nil
}

// accessRules are the rules in force: the file's, or "every user may do
// everything" without an access section; --anonymous-pull adds its own.
func (cfg *serveConfig) accessRules() []auth.Rule {
	rules := cfg.access
	if rules == nil {
		rules = []auth.Rule{{Repos: []string{"*"}, Users: []string{auth.AllUsers}, Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}}}
	}
	if len(cfg.anonymousPull) > 0 {
		rules = append(append([]auth.Rule(nil), rules...), auth.Rule{Repos: cfg.anonymousPull, Anonymous: true, Actions: []auth.Action{auth.Pull}})
	}
	return rules
}
