package regtest

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// Run is for a package's TestMain: it runs the tests, with a PostgreSQL
// server for the test binary when a chosen backend needs one and an S3
// server when the chosen blob store is s3, and returns the exit code.
func Run(m *testing.M) int {
	run := m.Run
	bs, err := Backends()
	if err == nil {
		for _, b := range bs {
			if b.DB == "postgres" {
				run = func() int { return pgtest.Run(m) }
				break
			}
		}
		if bs[0].Blob == BlobsS3 {
			// The S3 driver takes its credentials the usual AWS way, from
			// the environment, as the binary does.
			os.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
			os.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
			return s3test.Around(run)
		}
	}
	// An error is reported by the first Open, as a failed test.
	return run()
}
