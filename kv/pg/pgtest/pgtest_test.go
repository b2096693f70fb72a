package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two databases of one server are distinct and writable.
func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (k bytea)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("a table of one database is seen in another: %d, %v", n, err)
	}
	var fsync string
	if err := ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q, %v", fsync, err)
	}
}

// Without PostgreSQL the tests that need it skip, saying how to install
// it, unless CI=true, where the run fails.
func TestMissingPostgreSQL(t *testing.T) {
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNewDatabase$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_BIN=/nonexistent", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "apt-get install postgresql") {
		t.Fatalf("without CI: %v\n%s", err, out)
	}
	out, err = run("true")
	if err == nil || strings.Contains(out, "--- SKIP") || !strings.Contains(out, "CI=true") {
		t.Fatalf("with CI=true: %v\n%s", err, out)
	}
}
