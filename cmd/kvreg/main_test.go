package main

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// TestMain starts a PostgreSQL for the tests that run kvreg on it, and
// removes the kvreg binary the tests built (testenv.Kvreg).
func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	testenv.Cleanup()
	os.Exit(code)
}
