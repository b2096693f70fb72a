package main

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// TestMain starts a PostgreSQL and an S3 server for the tests that run
// kvreg on them, and removes the kvreg binary the tests built
// (testenv.Kvreg).
func TestMain(m *testing.M) {
	code := s3test.Around(func() int { return pgtest.Run(m) })
	testenv.Cleanup()
	os.Exit(code)
}
