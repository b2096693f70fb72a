package cluster

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// TestMain starts the PostgreSQL and S3 servers every cluster shares a
// database and a bucket of, and removes the kvreg binary the tests built.
func TestMain(m *testing.M) {
	code := s3test.Around(func() int { return pgtest.Run(m) })
	testenv.Cleanup()
	os.Exit(code)
}
