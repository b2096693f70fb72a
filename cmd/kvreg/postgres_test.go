package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		return statsJSON(t, bin, "--root", root, "--db", db)
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

// A database that goes away: requests fail with 503 UNAVAILABLE and a
// message saying so, /readyz says not ready, /healthz still answers, and
// kvreg serves again by itself once the database is back.
func TestPostgresOutage(t *testing.T) {
	bin := buildKvreg(t)
	db := pgtest.NewDatabase(t)
	root := filepath.Join(t.TempDir(), "data")
	s := startServer(t, bin, root, "--db", db)
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v1", []byte("before the outage")); err != nil || st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, err)
	}
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String(), resp.Header
	}

	pgtest.Stop(t)
	st, body, h := get("/v2/team/app/manifests/v1")
	if st != http.StatusServiceUnavailable || !strings.Contains(body, `"UNAVAILABLE"`) || !strings.Contains(body, "database") || h.Get("Retry-After") == "" {
		t.Fatalf("GET manifest with the database down: %d %s (Retry-After %q)", st, body, h.Get("Retry-After"))
	}
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v2", []byte("during the outage")); err != nil || st != http.StatusServiceUnavailable {
		t.Fatalf("push with the database down: %d %v, want 503", st, err)
	}
	if st, _, _ := get("/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database down: %d", st)
	}
	if st, _, _ := get("/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz with the database down: %d", st)
	}

	pgtest.Start(t)
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		if st, _, _ := get("/readyz"); st == http.StatusOK {
			ready = true
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("/readyz not ready 10 s after the database came back")
	}
	if st, body, _ := get("/v2/team/app/manifests/v1"); st != http.StatusOK {
		t.Fatalf("GET manifest after the outage: %d %s", st, body)
	}
	if st, err := pushWith(http.DefaultClient, s.URL, "", "team/app", "v2", []byte("after the outage")); err != nil || st != http.StatusCreated {
		t.Fatalf("push after the outage: %d %v", st, err)
	}
	stopServer(t, s)
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root, "--db", db); code != 0 {
		t.Fatalf("fsck after the outage: exit %d\n%s%s", code, out, errOut)
	}
}
