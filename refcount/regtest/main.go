package regtest

import (
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// Run is for a package's TestMain: it runs the tests, with a PostgreSQL
// server for the test binary when a chosen backend needs one, and returns
// the exit code.
func Run(m *testing.M) int {
	bs, err := Backends()
	if err == nil {
		for _, b := range bs {
			if b.DB == "postgres" {
				return pgtest.Run(m)
			}
		}
	}
	// An error is reported by the first Open, as a failed test.
	return m.Run()
}
