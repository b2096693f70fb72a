package pgkv

import (
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// A batch read is planned once per connection, however often it runs: a
// plan made for each execution cost the server as much as the read.
func TestBatchReadPlannedOnce(t *testing.T) {
	for name, c := range map[string]struct {
		query      string
		wantCustom bool
	}{
		"kvreg's default":       {"", false},
		"the URL's plan choice": {"&plan_cache_mode=force_custom_plan", true},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(pgtest.NewDatabase(t)+c.query, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			conn, err := s.pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			const runs = 8
			for i := 0; i < runs; i++ {
				rows, err := conn.Query(t.Context(), batchSQL, [][]byte{[]byte("t")}, [][]byte{[]byte("k")})
				if err != nil {
					t.Fatal(err)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
			}
			var generic, custom int64
			if err := conn.QueryRow(t.Context(), "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", batchSQL).Scan(&generic, &custom); err != nil {
				t.Fatal(err)
			}
			if c.wantCustom {
				if custom != runs {
					t.Fatalf("%d custom and %d generic plans for %d runs, want %d custom", custom, generic, runs, runs)
				}
				return
			}
			if custom != 0 || generic != runs {
				t.Fatalf("%d custom and %d generic plans for %d runs, want one generic plan used each time", custom, generic, runs)
			}
		})
	}
}
