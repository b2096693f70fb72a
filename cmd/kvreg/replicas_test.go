package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// --replicas is a setting like the others (flag, environment, file) and
// refuses, before anything opens, stores that one process owns.
func TestConfigReplicas(t *testing.T) {
	const pg, bucket = "postgres://kvreg@127.0.0.1/kvreg", "s3://bucket/prefix"
	cfg, err := resolve(t, "--replicas", "--db", pg, "--blob-store", bucket)
	if err != nil || !cfg.replicas {
		t.Fatalf("--replicas: %+v %v", cfg, err)
	}
	file := writeFile(t, "kvreg.yaml", "replicas: true\ndb: "+pg+"\nblob-store: "+bucket+"\n")
	if cfg, err := resolve(t, "--config", file); err != nil || !cfg.replicas {
		t.Fatalf("replicas in the file: %v %v", cfg, err)
	}
	if cfg, err := resolve(t, "--db", pg, "--blob-store", bucket); err != nil || cfg.replicas {
		t.Fatalf("default: %+v %v", cfg, err)
	}
	t.Setenv("KVREG_REPLICAS", "true")
	if cfg, err := resolve(t, "--db", pg, "--blob-store", bucket); err != nil || !cfg.replicas {
		t.Fatalf("KVREG_REPLICAS: %v %v", cfg, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas"}, "PostgreSQL --db"},
		{[]string{"--replicas", "--blob-store", bucket}, "PostgreSQL --db"},
		{[]string{"--replicas", "--db", "/var/lib/kvreg/kvreg.db", "--blob-store", bucket}, "PostgreSQL --db"},
		{[]string{"--replicas", "--db", pg}, "s3:// --blob-store"},
		{[]string{"--replicas", "--db", pg, "--blob-store", "/srv/blobs"}, "s3:// --blob-store"},
	} {
		_, err := resolve(t, c.args...)
		if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a configuration error saying %q", c.args, err, c.want)
		}
	}
}

// The binary refuses --replicas over a bbolt file or a directory with exit
// 2 before it touches them.
func TestReplicasRefusedWithoutSharedStores(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	if !expectRefusal(t, bin, "--replicas needs a PostgreSQL --db", "serve", "--addr", "127.0.0.1:0", "--root", root, "--replicas") {
		t.Fatal("kvreg serve --replicas hung")
	}
	if !expectRefusal(t, bin, "--replicas needs an s3:// --blob-store", "serve", "--addr", "127.0.0.1:0", "--root", root, "--replicas", "--db", "postgres://kvreg@127.0.0.1:1/kvreg") {
		t.Fatal("kvreg serve --replicas hung")
	}
}
