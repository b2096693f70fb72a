package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
)

// One kvreg serve writes to a PostgreSQL database at a time: a second one
// on the same database exits 2 saying so, while the operator commands work
// beside the first, through its socket or opening the database directly.
func TestPostgresOneServePerDatabase(t *testing.T) {
	bin := buildKvreg(t)
	db := pgtest.NewDatabase(t)
	root := filepath.Join(t.TempDir(), "data")
	s := startServer(t, bin, root, "--db", db)
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v1", []byte("a layer on PostgreSQL")); err != nil || st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, err)
	}

	out, errOut, code := run(t, bin, "serve", "--addr", "127.0.0.1:0", "--root", filepath.Join(t.TempDir(), "other"), "--db", db)
	if code != 2 || !strings.Contains(errOut, "another kvreg") {
		t.Fatalf("second serve on the database: exit %d, want 2 with a message naming the other kvreg\n%s%s", code, out, errOut)
	}

	stats := func(root string) refcount.StatsReport {
		t.Helper()
		out, errOut, code := run(t, bin, "stats", "--json", "--root", root, "--db", db)
		if code != 0 {
			t.Fatalf("stats --root %s: exit %d: %s", root, code, errOut)
		}
		var rep refcount.StatsReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stats: %v: %s", err, out)
		}
		return rep
	}
	// Through the running server's socket, and straight from the database.
	for _, r := range []string{root, t.TempDir()} {
		if rep := stats(r); rep.Totals.Tags != 1 || rep.Totals.Manifests != 1 || rep.Totals.Blobs != 2 {
			t.Fatalf("stats --root %s beside serve: %+v", r, rep.Totals)
		}
	}
	if out, errOut, code := run(t, bin, "ls", "--root", root, "--db", db, "team/app"); code != 0 || !strings.Contains(out, "v1") {
		t.Fatalf("ls beside serve: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root, "--db", db); code != 0 {
		t.Fatalf("fsck beside serve: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, bin, "rm", "--root", root, "--db", db, "team/app:v1"); code != 0 {
		t.Fatalf("rm beside serve: exit %d\n%s%s", code, out, errOut)
	}
	if rep := stats(root); rep.Totals.Tags != 0 || rep.Totals.Blobs != 0 {
		t.Fatalf("after rm: %+v", rep.Totals)
	}
	stopServer(t, s)
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root, "--db", db); code != 0 {
		t.Fatalf("fsck after stop: exit %d\n%s%s", code, out, errOut)
	}
}
