package kv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// onPostgres: KVREG_TEST_BACKENDS names postgres first, so that kv's tests
// run on PostgreSQL (make test runs them once per backend). The rest of
// the suites read the variable through refcount/regtest, which kv's tests
// cannot import.
func onPostgres() bool {
	first, _, _ := strings.Cut(os.Getenv("KVREG_TEST_BACKENDS"), ",")
	return strings.TrimSpace(first) == "postgres"
}

// TestMain starts a PostgreSQL for the test binary: the tests of kv's
// migrations on PostgreSQL need one whatever the backend of the others.
func TestMain(m *testing.M) { pgtest.Main(m) }

// target is a new, empty database for one test on the chosen backend: a
// bbolt file, or a PostgreSQL database of its own.
func target(t *testing.T) string {
	t.Helper()
	if onPostgres() {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "k.db")
}
