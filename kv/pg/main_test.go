package pgkv_test

import (
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	"github.com/kvreg/kvreg/kv/backend/backendtest"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string, o pgkv.Options) *pgkv.Store {
	t.Helper()
	s, err := pgkv.Open(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Store {
		s, err := pgkv.Open(pgtest.NewDatabase(t), pgkv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
