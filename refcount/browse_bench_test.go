package refcount_test

// Benchmarks of the web UI's reads at the scale its pages must stay fast
// at, on bbolt unless KVREG_TEST_BACKENDS names another:
//
//	go test -run '^$' -bench 'Repositories10k|TagPage10k' ./refcount
//
// The stores are written through the registry's own write path (a
// finished upload's link, then the manifest push), many pushes to a
// transaction so that the setup is not 10,000 fsyncs. Blob files are not
// written: the reads never open them.

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// benchPush is one push of pushBatch: an image of a config of its own and
// a base layer shared by every image of the store.
type benchPush struct {
	repo, tag string
	config    string
}

// pushBatch pushes images in transactions of up to 1000 pushes each.
func pushBatch(b *testing.B, reg *refcount.Registry, base string, pushes []benchPush) {
	b.Helper()
	const perTx = 1000
	for lo := 0; lo < len(pushes); lo += perTx {
		batch := pushes[lo:min(lo+perTx, len(pushes))]
		c, err := reg.UpdateTx(func(tx *kv.Tx, c *refcount.Change) error {
			for _, p := range batch {
				for _, d := range []string{p.config, base} {
					if err := reg.LinkBlobTx(tx, c, p.repo, d, 1000); err != nil {
						return err
					}
				}
				body := imageBody([]string{p.config, base}, func(string) int64 { return 1000 })
				if _, err := reg.PutManifestTx(tx, c, p.repo, []string{p.tag}, refcount.MediaTypeOCIManifest, body); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = reg.Finish(c)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func openBench(b *testing.B) *regtest.Registry {
	b.Helper()
	return regtest.Open(b, regtest.Options{NoCheck: true})
}

// BenchmarkRepositories10k reads a page of 50 of 10,000 repositories with
// a filter that matches half of them.
func BenchmarkRepositories10k(b *testing.B) {
	reg := openBench(b)
	start := time.Now()
	base := string(digest.FromString("base"))
	var pushes []benchPush
	for i := 0; i < 10_000; i++ {
		team := []string{"web", "data"}[i%2]
		pushes = append(pushes, benchPush{
			repo: fmt.Sprintf("%s/app%05d", team, i), tag: "latest",
			config: string(digest.FromString(fmt.Sprintf("config/%d", i))),
		})
	}
	pushBatch(b, reg.Registry, base, pushes)
	b.Logf("10,000 repositories pushed in %v", time.Since(start).Round(time.Millisecond))
	q := refcount.RepoQuery{Contains: "WEB/", Offset: 2500, Limit: 50, Visible: func(string) bool { return true }}
	for b.Loop() {
		page, err := reg.Repositories(q)
		if err != nil {
			b.Fatal(err)
		}
		if page.Total != 5000 || len(page.Rows) != 50 {
			b.Fatalf("total %d, %d rows", page.Total, len(page.Rows))
		}
	}
}

// BenchmarkTagPage10k reads a page of 100 tags in the middle of a
// repository of 10,000 tags.
func BenchmarkTagPage10k(b *testing.B) {
	reg := openBench(b)
	start := time.Now()
	base := string(digest.FromString("base"))
	var pushes []benchPush
	for i := 0; i < 10_000; i++ {
		pushes = append(pushes, benchPush{
			repo: "big/app", tag: fmt.Sprintf("v%05d", i),
			config: string(digest.FromString(fmt.Sprintf("config/%d", i))),
		})
	}
	pushBatch(b, reg.Registry, base, pushes)
	b.Logf("10,000 tags pushed in %v", time.Since(start).Round(time.Millisecond))
	q := refcount.TagQuery{Offset: 5000, Limit: 100}
	for b.Loop() {
		page, err := reg.TagPage("big/app", q)
		if err != nil {
			b.Fatal(err)
		}
		if page.Total != 10_000 || len(page.Tags) != 100 || page.Tags[0].Tag != "v05000" {
			b.Fatalf("total %d, %d tags", page.Total, len(page.Tags))
		}
	}
}
