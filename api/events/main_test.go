package events_test

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/refcount/regtest"
)

// TestMain starts what the chosen backends need (a PostgreSQL server for
// KVREG_TEST_BACKENDS=postgres) once for the package's tests.
func TestMain(m *testing.M) { os.Exit(regtest.Run(m)) }
