package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/urfave/cli/v2"
)

// resolve runs `kvreg serve ARGS` with the real flags up to the point
// where the settings are resolved, and returns them.
func resolve(t *testing.T, args ...string) (*serveConfig, error) {
	t.Helper()
	var cfg *serveConfig
	var rerr error
	cmd := serveCommand()
	cmd.Action = func(c *cli.Context) error {
		cfg, rerr = resolveConfig(c)
		return nil
	}
	app := &cli.App{Name: "kvreg", Commands: []*cli.Command{cmd}, ExitErrHandler: func(*cli.Context, error) {}}
	if err := app.Run(append([]string{"kvreg", "serve"}, args...)); err != nil {
		t.Fatalf("run: %v", err)
	}
	return cfg, rerr
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The one precedence: flags, then KVREG_ environment variables, then the
// file, then the defaults.
func TestConfigPrecedence(t *testing.T) {
	// Defaults: what `make run` relies on.
	cfg, err := resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != "127.0.0.1:5000" || cfg.root != "./data" || cfg.maxManifest != 4<<20 || cfg.maxBlob != 0 ||
		cfg.uploadGrace != time.Hour || cfg.pinWindow != 10*time.Minute || cfg.shutdownTimeout != 30*time.Second ||
		cfg.uploadTimeout != 24*time.Hour || cfg.readOnly || cfg.htpasswd != "" || cfg.tlsCert != "" || cfg.db != "" {
		t.Fatalf("defaults: %+v", cfg)
	}

	file := writeFile(t, "kvreg.yaml", `
addr: 0.0.0.0:6000            # flag wins
root: /from/file              # env wins
max-blob-bytes: 1000          # file wins over the default
upload-timeout: 2h
read-only: true
stall-timeout: 5s
anonymous-pull: ["public/*", "docs/*"]
trusted-proxies: ["10.0.0.0/8", "192.0.2.1"]
htpasswd: /etc/kvreg/htpasswd
db: postgres://kvreg@db.example/kvreg
blob-store: s3://images?endpoint=http://127.0.0.1:7070&path-style=true
groups:
  devs: [alice]
access:
  - repos: ["team/*"]
    groups: [devs]
    actions: [pull, push]
`)
	t.Setenv("KVREG_ROOT", "/from/env")
	t.Setenv("KVREG_SHUTDOWN_TIMEOUT", "7s")
	t.Setenv("KVREG_STALL_TIMEOUT", "9s")
	cfg, err = resolve(t, "--config", file, "--addr", "127.0.0.1:7000", "--stall-timeout", "11s")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"addr (flag over file)", cfg.addr, "127.0.0.1:7000"},
		{"root (env over file)", cfg.root, "/from/env"},
		{"stall-timeout (flag over env over file)", cfg.stallTimeout, 11 * time.Second},
		{"shutdown-timeout (env over default)", cfg.shutdownTimeout, 7 * time.Second},
		{"max-blob-bytes (file over default)", cfg.maxBlob, int64(1000)},
		{"upload-timeout (file)", cfg.uploadTimeout, 2 * time.Hour},
		{"read-only (file)", cfg.readOnly, true},
		{"max-manifest-bytes (default)", cfg.maxManifest, int64(4 << 20)},
		{"htpasswd (file)", cfg.htpasswd, "/etc/kvreg/htpasswd"},
		{"db (file)", cfg.db, "postgres://kvreg@db.example/kvreg"},
		{"blob-store (file)", cfg.blobStore, "s3://images?endpoint=http://127.0.0.1:7070&path-style=true"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if !slices.Equal(cfg.anonymousPull, []string{"public/*", "docs/*"}) {
		t.Errorf("anonymous-pull: %v", cfg.anonymousPull)
	}
	if got := fmt.Sprint(cfg.trustedProxies); got != "[10.0.0.0/8 192.0.2.1/32]" {
		t.Errorf("trusted-proxies (file): %s", got)
	}
	if len(cfg.access) != 1 || cfg.access[0].Groups[0] != "devs" || !slices.Equal(cfg.access[0].Actions, []auth.Action{auth.Pull, auth.Push}) {
		t.Errorf("access: %+v", cfg.access)
	}
	// The environment also beats the file for lists.
	t.Setenv("KVREG_ANONYMOUS_PULL", "only/*")
	cfg, err = resolve(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.anonymousPull, []string{"only/*"}) {
		t.Errorf("anonymous-pull from env: %v", cfg.anonymousPull)
	}
	t.Setenv("KVREG_TRUSTED_PROXIES", "127.0.0.1/32,fd00::/8")
	if cfg, err = resolve(t, "--config", file); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.trustedProxies); got != "[127.0.0.1/32 fd00::/8]" {
		t.Errorf("trusted-proxies from env: %s", got)
	}
	if cfg, err = resolve(t, "--config", file, "--trusted-proxies", "10.1.2.3/8", "--trusted-proxies", "::1"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.trustedProxies); got != "[10.0.0.0/8 ::1/128]" {
		t.Errorf("trusted-proxies from flags: %s", got)
	}
	cfg.htpasswd = "" // not a file here
	ac, err := apiConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ac.TrustedProxies); got != "[10.0.0.0/8 ::1/128]" {
		t.Errorf("trusted-proxies in the API's configuration: %s", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"unknown key", "adress: x\n", nil, `unknown setting "adress"`},
		{"typo in a rule", "htpasswd: f\naccess:\n  - repo: [x]\n", nil, "repo"},
		{"bad duration", "upload-timeout: soon\n", nil, "upload-timeout"},
		{"list for a value", "addr: [a, b]\n", nil, "takes one value"},
		{"config in the file", "config: other.yaml\n", nil, `unknown setting "config"`},
		{"not yaml", "addr: [\n", nil, "kvreg.yaml"},
		{"cert without key", "", []string{"--tls-cert", "c.pem"}, "go together"},
		{"anonymous without users", "", []string{"--anonymous-pull", "x/*"}, "needs --htpasswd"},
		{"rules without users", "access: []\n", nil, "need --htpasswd"},
		{"log format", "", []string{"--log-format", "xml"}, "text or json"},
		{"negative", "", []string{"--max-blob-bytes", "-1"}, "must not be negative"},
		{"trusted proxy not a CIDR", "", []string{"--trusted-proxies", "10.0.0.0/8,lb.example"}, "--trusted-proxies"},
		{"trusted proxy not a CIDR in the file", "trusted-proxies: 10.0.0.0/33\n", nil, "--trusted-proxies"},
		{"auth mode without users", "", []string{"--auth-mode", "token"}, "--auth-mode needs --htpasswd"},
		{"token issuer without users", "token-issuer: [corp=keys.pem]\n", nil, "--token-issuer needs --htpasswd"},
		{"unknown auth mode", "", []string{"--htpasswd", "h", "--auth-mode", "oauth"}, "token or basic"},
		{"token flags in basic mode", "", []string{"--htpasswd", "h", "--auth-mode", "basic", "--token-key", "k.pem"}, "--token-key needs --auth-mode token"},
		{"token ttl zero", "", []string{"--htpasswd", "h", "--token-ttl", "0s"}, "--token-ttl"},
		{"token ttl too long", "", []string{"--htpasswd", "h", "--token-ttl", "48h"}, "--token-ttl"},
		{"token realm not a URL", "", []string{"--htpasswd", "h", "--token-realm", "auth.example/token"}, "--token-realm"},
		{"token service with a quote", "", []string{"--htpasswd", "h", "--token-service", `a"b`}, "--token-service"},
		{"token issuer without a file", "", []string{"--htpasswd", "h", "--token-issuer", "corp"}, "NAME=FILE"},
		{"token issuer named kvreg", "", []string{"--htpasswd", "h", "--token-issuer", "kvreg=k.pem"}, "kvreg's own"},
	} {
		args := c.args
		if c.file != "" {
			args = append([]string{"--config", writeFile(t, "kvreg.yaml", c.file)}, args...)
		}
		_, err := resolve(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
		if err != nil && !errors.Is(err, errConfig) {
			t.Errorf("%s: %v is not errConfig", c.name, err)
		}
	}
	if _, err := resolve(t, "--config", "/nonexistent/kvreg.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kvreg.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// With --htpasswd the token flow is the default; --auth-mode basic keeps
// HTTP Basic alone; the token settings read from flags and the file.
func TestConfigAuthMode(t *testing.T) {
	cfg, err := resolve(t, "--htpasswd", "h")
	if err != nil || cfg.authMode != "token" || cfg.tokenService != "kvreg" || cfg.tokenTTL != 5*time.Minute {
		t.Fatalf("default with --htpasswd: %+v %v", cfg, err)
	}
	if cfg, err = resolve(t, "--htpasswd", "h", "--auth-mode", "basic"); err != nil || cfg.authMode != "basic" {
		t.Fatalf("--auth-mode basic: %v %v", cfg.authMode, err)
	}
	if cfg, err = resolve(t); err != nil || cfg.authMode != "" {
		t.Fatalf("without --htpasswd: %q %v", cfg.authMode, err)
	}
	file := writeFile(t, "kvreg.yaml", "htpasswd: h\ntoken-issuer: [corp=a.pem, ci=b.json]\ntoken-ttl: 2m\ntoken-realm: https://reg.example/token\n")
	cfg, err = resolve(t, "--config", file, "--token-service", "reg.example")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.tokenIssuers, []string{"corp=a.pem", "ci=b.json"}) || cfg.tokenTTL != 2*time.Minute ||
		cfg.tokenRealm != "https://reg.example/token" || cfg.tokenService != "reg.example" {
		t.Errorf("token settings from the file: %+v", cfg)
	}
}

// Without an access section every user may do everything; with one, only
// what it grants; --anonymous-pull adds to either.
func TestAccessRulesInForce(t *testing.T) {
	known := func(string) bool { return true }
	alice, anon := auth.Caller{User: "alice"}, auth.Caller{}
	cfg := &serveConfig{anonymousPull: []string{"public/*"}}
	a, err := auth.NewAccess(cfg.accessRules(), nil, known)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allowed(alice, "any/repo", auth.Delete) || !a.Allowed(anon, "public/x", auth.Pull) || a.Allowed(anon, "any/repo", auth.Pull) {
		t.Error("default rules")
	}
	cfg.access = []auth.Rule{{Repos: []string{"team/*"}, Users: []string{"alice"}, Actions: []auth.Action{auth.Pull}}}
	a, err = auth.NewAccess(cfg.accessRules(), nil, known)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allowed(alice, "any/repo", auth.Pull) || !a.Allowed(alice, "team/x", auth.Pull) || !a.Allowed(alice, "public/x", auth.Pull) {
		t.Error("file rules")
	}
}
