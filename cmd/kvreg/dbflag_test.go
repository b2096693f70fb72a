package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/refcount"
)

// --db names the database apart from the data directory: serve writes its
// records there (and not to <root>/kvreg.db), and the operator commands
// given the same --db (or KVREG_DB) read them.
func TestDBFlagNamesTheDatabase(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(t.TempDir(), "meta", "registry.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, bin, root, "--db", db)
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v1", []byte("a layer in a database of its own")); err != nil || st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, err)
	}
	stopServer(t, s)
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the database named by --db: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, refcount.DBFile)); err == nil {
		t.Fatalf("serve --db also wrote %s", refcount.DBFile)
	}
	read := func(args ...string) refcount.StatsReport {
		t.Helper()
		return statsJSON(t, bin, append([]string{"--root", root}, args...)...)
	}
	if rep := read("--db", db); rep.Totals.Tags != 1 || rep.Totals.Repos != 1 {
		t.Fatalf("stats --db: %+v", rep.Totals)
	}
	t.Setenv("KVREG_DB", db)
	if rep := read(); rep.Totals.Tags != 1 {
		t.Fatalf("stats with KVREG_DB: %+v", rep.Totals)
	}
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root); code != 0 {
		t.Fatalf("fsck with KVREG_DB: exit %d\n%s%s", code, out, errOut)
	}
}

// statsJSON runs kvreg stats --json with args and decodes its report.
func statsJSON(t *testing.T, bin string, args ...string) refcount.StatsReport {
	t.Helper()
	out, errOut, code := run(t, bin, append([]string{"stats", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("stats %v: exit %d: %s", args, code, errOut)
	}
	var rep refcount.StatsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stats %v: %v: %s", args, err, out)
	}
	return rep
}
