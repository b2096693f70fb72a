package refcount_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// largeStore writes a store of `manifests` tagged images directly as
// records: 1000 repositories, each image with its own config and layer
// and a base layer shared within its repository, and an empty file per
// blob. It is built once per process.
func largeStore(b *testing.B, manifests int) *refcount.Registry {
	b.Helper()
	if largeReg != nil {
		return largeReg
	}
	root, err := os.MkdirTemp("", "kvreg-bench-")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	reg, err := refcount.OpenRoot(root, kv.Options{}, refcount.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const repos = 1000
	perRepo := manifests / repos
	for r := 0; r < repos; r++ {
		repo := fmt.Sprintf("team%02d/app%03d", r%50, r)
		base := digest.FromString(repo + "/base")
		emptyBlobFile(b, reg, base)
		err := reg.DB().Update(func(tx *kv.Tx) error {
			if err := tx.CreateBlob(string(base), kv.Blob{Size: 0, Created: 1}); err != nil {
				return err
			}
			if err := tx.PutLink(repo, string(base), kv.Link{Refs: uint64(perRepo)}); err != nil {
				return err
			}
			for i := 0; i < perRepo; i++ {
				cfg := digest.FromString(fmt.Sprintf("%s/%d/config", repo, i))
				layer := digest.FromString(fmt.Sprintf("%s/%d/layer", repo, i))
				for _, d := range []digest.Digest{cfg, layer} {
					emptyBlobFile(b, reg, d)
					if err := tx.CreateBlob(string(d), kv.Blob{Size: 0, Created: 1}); err != nil {
						return err
					}
					if err := tx.PutLink(repo, string(d), kv.Link{Refs: 1}); err != nil {
						return err
					}
				}
				body := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":0},"layers":[{"digest":%q,"size":0},{"digest":%q,"size":0}]}`, cfg, base, layer))
				md := digest.FromBytes(body)
				m := kv.Manifest{Refs: 1, MediaType: refcount.MediaTypeOCIManifest, Size: int64(len(body)),
					Blobs: []string{string(cfg), string(base), string(layer)}}
				if err := tx.PutManifest(repo, string(md), m, body); err != nil {
					return err
				}
				if err := tx.PutTag(repo, fmt.Sprintf("v%d", i), string(md), 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built a store of %d manifests in %v at %s", manifests, time.Since(start), root)
	largeReg, largeRoot = reg, root
	return reg
}

var (
	largeReg  *refcount.Registry
	largeRoot string
)

// TestMain removes the large store the benchmarks share.
func TestMain(m *testing.M) {
	code := regtest.Run(m)
	if largeReg != nil {
		largeReg.Close()
		os.RemoveAll(largeRoot)
	}
	os.Exit(code)
}

// benchManifests is the number of images in a benchmark's store:
// KVREG_BENCH_SMALL=1 makes it a tenth.
func benchManifests() int {
	if os.Getenv("KVREG_BENCH_SMALL") != "" {
		return 10_000
	}
	return 100_000
}

// emptyBlobFile makes d's bytes exist, empty, without an upload: a store
// built as records needs files only to have something to remove.
func emptyBlobFile(b *testing.B, reg *refcount.Registry, d digest.Digest) {
	b.Helper()
	if err := os.WriteFile(localFiles(b, reg).BlobFile(d), nil, 0o644); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkStats(b *testing.B) {
	reg := largeStore(b, benchManifests())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := reg.Stats(20)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Totals.Manifests != int64(benchManifests()) {
			b.Fatalf("stats counted %d manifests", rep.Totals.Manifests)
		}
	}
}

func BenchmarkFsck(b *testing.B) {
	reg := largeStore(b, benchManifests())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		probs, err := reg.Check(false)
		if err != nil {
			b.Fatal(err)
		}
		if len(probs) != 0 {
			b.Fatalf("%d problems, first %v", len(probs), probs[0])
		}
	}
}
