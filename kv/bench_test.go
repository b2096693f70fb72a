package kv

// Benchmarks of the kv hot paths on a store at scale: 1,000,000 blobs and
// 100,000 tags, all in one repository (the worst case for its key ranges).
//
//	go test -run '^$' -bench Scale -benchmem ./kv
//
// The store is written directly as records, in large transactions, once
// per process and only when a Scale benchmark runs (a minute or two).
// KVREG_BENCH_SMALL=1 builds a tenth of it.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

const scaleRepo = "scale/app"

// scaleShape: manifests (one tag each) of a config, 8 layers of their own
// and 2 layers from a pool each pool layer of which two manifests share:
// manifests*(1+8) + manifests blobs.
type scaleShape struct {
	manifests int
}

func (s scaleShape) blobs() int { return s.manifests * 10 }

func scaleSize() scaleShape {
	if os.Getenv("KVREG_BENCH_SMALL") != "" {
		return scaleShape{manifests: 10_000}
	}
	return scaleShape{manifests: 100_000}
}

func scaleTag(i int) string { return fmt.Sprintf("v%06d", i) }

// scaleManifest returns manifest i's blobs (config first) and its body.
func scaleManifest(s scaleShape, i int) ([]string, []byte) {
	bl := []string{string(digest.FromString(fmt.Sprintf("config/%d", i)))}
	for j := 0; j < 8; j++ {
		bl = append(bl, string(digest.FromString(fmt.Sprintf("layer/%d/%d", i, j))))
	}
	bl = append(bl,
		string(digest.FromString(fmt.Sprintf("pool/%d", i))),
		string(digest.FromString(fmt.Sprintf("pool/%d", (i+1)%s.manifests))))
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":1000},"layers":[`, bl[0])
	for j, d := range bl[1:] {
		if j > 0 {
			body += ","
		}
		body += fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":1000}`, d)
	}
	return bl, []byte(body + "]}")
}

type scaleDB struct {
	db        *DB
	shape     scaleShape
	blobs     []string // every blob digest, sorted
	manifests []string // manifest digests by index
}

var (
	scaleOnce  sync.Once
	scaleStore *scaleDB
	scaleErr   error
)

// openScale builds the store once per process. The database file is
// unlinked as soon as it is open: the open handle keeps it alive for the
// benchmarks and nothing is left behind when the process ends.
func openScale(b *testing.B) *scaleDB {
	b.Helper()
	scaleOnce.Do(func() { scaleStore, scaleErr = buildScale(b, scaleSize()) })
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	return scaleStore
}

func buildScale(b *testing.B, s scaleShape) (*scaleDB, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "kvreg-kv-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := Open(filepath.Join(dir, "kv.db"), Options{})
	if err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(dir, "kv.db"))
	st := &scaleDB{db: db, shape: s}

	// Blob records and their links first, in digest order and large
	// transactions, so that each transaction touches a run of pages.
	refs := map[string]uint64{}
	st.manifests = make([]string, s.manifests)
	bodies := make([][]byte, s.manifests)
	lists := make([][]string, s.manifests)
	for i := 0; i < s.manifests; i++ {
		bl, body := scaleManifest(s, i)
		for _, d := range bl {
			refs[d]++
		}
		st.manifests[i], bodies[i], lists[i] = string(digest.FromBytes(body)), body, bl
	}
	st.blobs = make([]string, 0, len(refs))
	for d := range refs {
		st.blobs = append(st.blobs, d)
	}
	sort.Strings(st.blobs)
	const blobsPerTx = 100_000
	for lo := 0; lo < len(st.blobs); lo += blobsPerTx {
		hi := min(lo+blobsPerTx, len(st.blobs))
		err := db.Update(func(tx *Tx) error {
			for _, d := range st.blobs[lo:hi] {
				if err := tx.CreateBlob(d, Blob{Size: 1000, Created: 1}); err != nil {
					return err
				}
				if err := tx.PutLink(scaleRepo, d, Link{Refs: refs[d]}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Manifests in digest order too: the tables keyed by manifest digest
	// grow at their end, and the build leaves few free pages behind, as a
	// store grown one push at a time does (see BenchmarkCommitFreelist in kv/bolt for
	// what a long freelist costs).
	order := make([]int, s.manifests)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(x, y int) bool { return st.manifests[order[x]] < st.manifests[order[y]] })
	const manifestsPerTx = 20_000
	for lo := 0; lo < s.manifests; lo += manifestsPerTx {
		hi := min(lo+manifestsPerTx, s.manifests)
		err := db.Update(func(tx *Tx) error {
			for _, i := range order[lo:hi] {
				m := Manifest{Refs: 1, Created: 1, MediaType: "application/vnd.oci.image.manifest.v1+json",
					Size: int64(len(bodies[i])), Blobs: lists[i]}
				if err := tx.PutManifest(scaleRepo, st.manifests[i], m, bodies[i]); err != nil {
					return err
				}
				if err := tx.PutTag(scaleRepo, scaleTag(i), st.manifests[i], 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var c Counters
	if err := db.View(func(tx *Tx) error { var err error; c, err = tx.Counters(); return err }); err != nil {
		return nil, err
	}
	if c.Blobs != int64(s.blobs()) || c.Tags != int64(s.manifests) {
		return nil, fmt.Errorf("scale store: %d blobs, %d tags; want %d, %d", c.Blobs, c.Tags, s.blobs(), s.manifests)
	}
	if err := db.Update(func(*Tx) error { return nil }); err != nil {
		return nil, err
	}
	b.Logf("built a store of %d blobs, %d manifests, %d tags in %v: %d MB",
		c.Blobs, c.Manifests, c.Tags, time.Since(start).Round(time.Millisecond), db.Size()>>20)
	return st, nil
}

func BenchmarkScaleTagsFirstPage(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var tags []string
		err := st.db.View(func(tx *Tx) error { var err error; tags, _, err = tx.Tags(scaleRepo, "", 100); return err })
		if err != nil {
			b.Fatal(err)
		}
		if len(tags) != 100 || tags[0] != scaleTag(0) {
			b.Fatalf("first page: %d tags from %q", len(tags), tags)
		}
	}
}

func BenchmarkScaleTagsMiddlePage(b *testing.B) {
	st := openScale(b)
	last := scaleTag(st.shape.manifests / 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var tags []string
		err := st.db.View(func(tx *Tx) error { var err error; tags, _, err = tx.Tags(scaleRepo, last, 100); return err })
		if err != nil {
			b.Fatal(err)
		}
		if len(tags) != 100 {
			b.Fatalf("%d tags", len(tags))
		}
	}
}

func BenchmarkScaleTagsPage1000(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var tags []string
		err := st.db.View(func(tx *Tx) error { var err error; tags, _, err = tx.Tags(scaleRepo, "", 1000); return err })
		if err != nil {
			b.Fatal(err)
		}
		if len(tags) != 1000 {
			b.Fatalf("%d tags", len(tags))
		}
	}
}

// BenchmarkScaleBlobLink: what a HEAD of a blob reads, a link and a blob
// record, by random digest.
func BenchmarkScaleBlobLink(b *testing.B) {
	st := openScale(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := st.blobs[rnd.IntN(len(st.blobs))]
		err := st.db.View(func(tx *Tx) error {
			if _, ok, err := tx.Link(scaleRepo, d); !ok || err != nil {
				return fmt.Errorf("link %s: %v %v", d, ok, err)
			}
			_, _, err := tx.Blob(d)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleManifestByTag: what a manifest GET reads.
func BenchmarkScaleManifestByTag(b *testing.B) {
	st := openScale(b)
	rnd := rand.New(rand.NewPCG(1, 3))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tag := scaleTag(rnd.IntN(st.shape.manifests))
		err := st.db.View(func(tx *Tx) error {
			d, ok, err := tx.Tag(scaleRepo, tag)
			if !ok || err != nil {
				return fmt.Errorf("tag %s: %v", tag, err)
			}
			if _, ok, err := tx.Manifest(scaleRepo, d); !ok || err != nil {
				return fmt.Errorf("manifest %s: %v", d, err)
			}
			if c, err := tx.ManifestContent(scaleRepo, d); c == nil || err != nil {
				return fmt.Errorf("content of %s: %v", d, err)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScaleCounters(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var c Counters
		err := st.db.View(func(tx *Tx) error { var err error; c, err = tx.Counters(); return err })
		if err != nil || c.Blobs == 0 {
			b.Fatal("no blobs")
		}
	}
}

// BenchmarkScaleStoredCounters reads the stored totals only (what a
// metrics scrape reads each time).
func BenchmarkScaleStoredCounters(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var c Counters
		err := st.db.View(func(tx *Tx) error { var err error; c, err = tx.StoredCounters(); return err })
		if err != nil || c.Blobs == 0 {
			b.Fatal("no blobs")
		}
	}
}

// BenchmarkScaleEmptyUpdate is the floor of every write: a read-write
// transaction that changes nothing, committed (meta, freelist, fsync).
func BenchmarkScaleEmptyUpdate(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.db.Update(func(tx *Tx) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleRecordUpload: the records of one finished upload, a new
// blob and its link under a lease, in one committed transaction.
func BenchmarkScaleRecordUpload(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := string(digest.FromString(fmt.Sprintf("upload/%d/%d", time.Now().UnixNano(), i)))
		err := st.db.Update(func(tx *Tx) error {
			if err := tx.CreateBlob(d, Blob{Size: 1000, Created: 1}); err != nil {
				return err
			}
			exp := time.Now().Add(time.Hour).UnixNano()
			if err := tx.PutLease(Lease{Expiry: exp, Kind: LeaseLink, Repo: scaleRepo, Digest: d}); err != nil {
				return err
			}
			return tx.PutLink(scaleRepo, d, Link{Hold: Hold{Lease: exp, Pending: 1}})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleEmptyUpdateParallel is the same from concurrent writers,
// as the registry's writes come: overlapping ones share a commit.
func BenchmarkScaleEmptyUpdateParallel(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.db.Update(func(tx *Tx) error { return nil }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
