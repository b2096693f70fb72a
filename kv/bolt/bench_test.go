package boltkv

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// BenchmarkCommitFreelist: the cost of a commit that changes nothing, by
// the number of free pages in the file. bbolt writes (and sorts) the whole
// freelist at every commit, so after a large delete or a bulk load each
// write pays for every free page until they are reused.
//
//	go test -run '^$' -bench CommitFreelist ./kv/bolt
func BenchmarkCommitFreelist(b *testing.B) {
	for _, free := range []int{0, 10_000, 100_000} {
		b.Run(fmt.Sprintf("free=%d", free), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "f.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Values of 1 MiB take 257 pages each; put, then delete.
			val := make([]byte, 1<<20)
			n := free / 257
			for _, del := range []bool{false, true} {
				err := s.Update(func(tx backend.Tx) error {
					for i := 0; i < n; i++ {
						k := []byte(fmt.Sprint(i))
						var err error
						if del {
							err = tx.Delete([]byte("fill"), k)
						} else {
							err = tx.Put([]byte("fill"), k, val)
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			s.Update(func(backend.Tx) error { return nil })
			b.ReportMetric(float64(s.db.Stats().FreePageN), "free-pages")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Update(func(backend.Tx) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
