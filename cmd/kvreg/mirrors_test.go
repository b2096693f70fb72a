package main

import (
	"strings"
	"testing"
	"time"
)

// Mirrors come from the file's mirrors section (credentials, recheck,
// registry) and from --mirror PREFIX=URL; --mirror-default marks one; the
// budget needs a mirror.
func TestConfigMirrors(t *testing.T) {
	pw := writeFile(t, "hub-password", "s3cret\n")
	file := writeFile(t, "kvreg.yaml", `mirrors:
  - prefix: hub
    upstream: https://registry-1.docker.io
    registry: docker.io
    username: kv
    password-file: `+pw+`
    recheck: 1m
cache-max-bytes: 1000
`)
	cfg, err := resolve(t, "--config", file, "--mirror", "quay=https://quay.io", "--mirror-default", "hub")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.mirrors) != 2 || cfg.cacheMaxBytes != 1000 {
		t.Fatalf("mirrors %+v, budget %d", cfg.mirrors, cfg.cacheMaxBytes)
	}
	hub, quay := cfg.mirrors[0], cfg.mirrors[1]
	if hub.Prefix != "hub" || hub.Registry != "docker.io" || hub.Username != "kv" || hub.Password != "s3cret" || hub.Recheck != time.Minute || !hub.Default {
		t.Errorf("hub: %+v", hub)
	}
	if quay.Prefix != "quay" || quay.URL != "https://quay.io" || quay.Registry != "quay.io" || quay.Recheck != 5*time.Minute || quay.Default {
		t.Errorf("quay: %+v", quay)
	}
	if got := strings.Join(cfg.cachePrefixes(), ","); got != "hub,quay" {
		t.Errorf("cache prefixes %s", got)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no =", []string{"--mirror", "hub"}, "PREFIX=URL"},
		{"bad url", []string{"--mirror", "hub=registry-1.docker.io"}, "http(s)://host"},
		{"default unknown", []string{"--mirror", "hub=https://h", "--mirror-default", "quay"}, "no mirror has that prefix"},
		{"budget without a mirror", []string{"--cache-max-bytes", "10"}, "needs a mirror"},
		{"overlapping prefixes", []string{"--mirror", "a=https://x", "--mirror", "a/b=https://y"}, "overlaps"},
		{"username alone", []string{"--config", writeFile(t, "m.yaml", "mirrors:\n  - prefix: hub\n    upstream: https://h\n    username: kv\n")}, "go together"},
		{"unknown key", []string{"--config", writeFile(t, "m2.yaml", "mirrors:\n  - prefix: hub\n    upsteam: https://h\n")}, "upsteam"},
	} {
		if _, err := resolve(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}
