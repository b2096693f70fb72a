package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
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

// The operator commands over a PostgreSQL database and an S3 bucket need
// no data directory: the stores are shared, and so is what they answer. A
// kvreg serve without --replicas is refused beside a replica.
func TestOperatorCommandsOnSharedStoresNeedNoRoot(t *testing.T) {
	bin := buildKvreg(t)
	db := pgtest.NewDatabase(t)
	srv, _, at := s3Bucket(t)
	store := at(srv.Endpoint)
	s := startServer(t, bin, filepath.Join(t.TempDir(), "data"), "--replicas", "--db", db, "--blob-store", store)
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v1", []byte("a layer in the bucket")); err != nil || st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, err)
	}
	// A kvreg serve that is not a replica keeps pins in memory: it must
	// never write beside replicas.
	if !expectRefusal(t, bin, "holds the write lock", "serve", "--addr", "127.0.0.1:0", "--root", filepath.Join(t.TempDir(), "alone"), "--db", db, "--blob-store", store) {
		t.Fatal("kvreg serve without --replicas beside a replica hung")
	}
	nowhere := filepath.Join(t.TempDir(), "no-such-directory")
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", nowhere, "--db", db, "--blob-store", store); code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("fsck of the shared stores without a data directory: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, bin, "ls", "--root", nowhere, "--db", db, "--blob-store", store, "team/app"); code != 0 || !strings.Contains(out, "v1") {
		t.Fatalf("ls of the shared stores without a data directory: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(nowhere); !os.IsNotExist(err) {
		t.Fatalf("the operator commands made %s: %v", nowhere, err)
	}
	// Without shared stores the data directory is still required.
	if _, errOut, code := run(t, bin, "fsck", "--root", nowhere, "--db", db); code != 2 || !strings.Contains(errOut, "data directory") {
		t.Fatalf("fsck of a missing data directory: exit %d, want 2\n%s", code, errOut)
	}
}
