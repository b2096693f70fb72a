package refcount_test

// Benchmarks of the reference model's hot paths on a store at scale:
// 1,000,000 blobs and 100,000 tags, all in one repository.
//
//	go test -run '^$' -bench Scale -benchmem ./refcount
//
// The store is written directly as records (kv.Tx writes in large
// transactions), once per process and only when a Scale benchmark runs.
// Blob files exist only for the blobs a benchmark frees. KVREG_BENCH_SMALL=1
// builds a tenth of it.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

const scaleRepo = "scale/app"

func scaleTag(i int) string { return fmt.Sprintf("v%06d", i) }

// scaleBody is the manifest of an image of the scale store: every blob is
// described as 1000 bytes.
func scaleBody(blobs []string) []byte {
	return imageBody(blobs, func(string) int64 { return 1000 })
}

// scaleImage: manifest i has its config, 8 layers of its own and 2 layers
// of a pool, each pool layer shared by two manifests: 10 blobs per manifest
// in all, 1,000,000 for 100,000 manifests.
func scaleImage(n, i int) []string {
	bl := []string{string(digest.FromString(fmt.Sprintf("config/%d", i)))}
	for j := 0; j < 8; j++ {
		bl = append(bl, string(digest.FromString(fmt.Sprintf("layer/%d/%d", i, j))))
	}
	return append(bl,
		string(digest.FromString(fmt.Sprintf("pool/%d", i))),
		string(digest.FromString(fmt.Sprintf("pool/%d", (i+1)%n))))
}

type scaleReg struct {
	reg   *refcount.Registry
	root  string
	n     int
	blobs []string // sorted
	pool  []string // the shared layers
	seq   int      // names of what benchmarks add
}

var (
	scaleOnce  sync.Once
	scaleStore *scaleReg
	scaleErr   error
)

// openScale builds the store once per process. The database file is
// unlinked as soon as it is open (the handle keeps it alive): what is left
// of the data directory at exit is a few empty folders, which the next run
// removes.
func openScale(b *testing.B) *scaleReg {
	b.Helper()
	scaleOnce.Do(func() { scaleStore, scaleErr = buildScale(b, benchManifests()) })
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	return scaleStore
}

func removeStaleScaleRoots() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "kvreg-refcount-scale-*"))
	for _, dir := range old {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "kvreg-refcount-scale-"), "-", 2)[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			os.RemoveAll(dir)
		}
	}
}

func buildScale(b *testing.B, n int) (*scaleReg, error) {
	start := time.Now()
	removeStaleScaleRoots()
	root, err := os.MkdirTemp("", fmt.Sprintf("kvreg-refcount-scale-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	reg, err := refcount.OpenRoot(root, kv.Options{}, refcount.Options{})
	if err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(root, refcount.DBFile))
	st := &scaleReg{reg: reg, root: root, n: n}

	refs := map[string]uint64{}
	images := make([][]string, n)
	for i := range images {
		images[i] = scaleImage(n, i)
		for _, d := range images[i] {
			refs[d]++
		}
		st.pool = append(st.pool, images[i][9])
	}
	for d := range refs {
		st.blobs = append(st.blobs, d)
	}
	sort.Strings(st.blobs)
	// Blob records and links in digest order, in large transactions.
	for lo := 0; lo < len(st.blobs); lo += 100_000 {
		hi := min(lo+100_000, len(st.blobs))
		err := reg.DB().Update(func(tx *kv.Tx) error {
			for _, d := range st.blobs[lo:hi] {
				if err := tx.CreateBlob(d, kv.Blob{Size: 1000, Created: 1}); err != nil {
					return err
				}
				if err := tx.PutLink(scaleRepo, d, kv.Link{Refs: refs[d]}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Manifests in digest order too, so that the build leaves few free
	// pages behind, as a store grown one push at a time does.
	type man struct {
		i int
		d string
	}
	mans := make([]man, n)
	for i := range mans {
		mans[i] = man{i, string(digest.FromBytes(scaleBody(images[i])))}
	}
	sort.Slice(mans, func(x, y int) bool { return mans[x].d < mans[y].d })
	for lo := 0; lo < n; lo += 20_000 {
		hi := min(lo+20_000, n)
		err := reg.DB().Update(func(tx *kv.Tx) error {
			for _, mn := range mans[lo:hi] {
				i, d := mn.i, mn.d
				body := scaleBody(images[i])
				m := kv.Manifest{Refs: 1, Created: 1, MediaType: refcount.MediaTypeOCIManifest, Size: int64(len(body)), Blobs: images[i]}
				if err := tx.PutManifest(scaleRepo, d, m, body); err != nil {
					return err
				}
				if err := tx.PutTag(scaleRepo, scaleTag(i), d, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rep, err := reg.Stats(0)
	if err != nil {
		return nil, err
	}
	if rep.Totals.Blobs != int64(10*n) || rep.Totals.Tags != int64(n) {
		return nil, fmt.Errorf("scale store: %+v", rep.Totals)
	}
	b.Logf("built a store of %d blobs, %d manifests, %d tags in %v", rep.Totals.Blobs, rep.Totals.Manifests,
		rep.Totals.Tags, time.Since(start).Round(time.Millisecond))
	return st, nil
}

// upload records new blobs as finished uploads do (a link under a lease),
// all in one transaction; with files, an empty file for each.
func (st *scaleReg) upload(b *testing.B, blobs []string, files bool) {
	b.Helper()
	for _, d := range blobs {
		if files {
			emptyBlobFile(b, st.reg, digest.Digest(d))
		}
	}
	_, err := st.reg.UpdateTx(func(tx *kv.Tx, c *refcount.Change) error {
		for _, d := range blobs {
			if err := st.reg.LinkBlobTx(tx, c, scaleRepo, d, 1000); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// newImage names a new image of a config and 10 layers: all its own, or
// (shared) one of its own and 9 from the pool that are in use already.
func (st *scaleReg) newImage(shared bool) (tag string, blobs, fresh []string) {
	st.seq++
	k := fmt.Sprintf("bench/%d/%d", time.Now().UnixNano(), st.seq)
	blobs = []string{string(digest.FromString(k + "/config"))}
	for j := 0; j < 10; j++ {
		if shared && j < 9 {
			blobs = append(blobs, st.pool[(st.seq*9+j)%len(st.pool)])
			continue
		}
		blobs = append(blobs, string(digest.FromString(fmt.Sprintf("%s/layer/%d", k, j))))
	}
	fresh = []string{blobs[0]}
	if shared {
		fresh = append(fresh, blobs[10])
	} else {
		fresh = blobs
	}
	return fmt.Sprintf("bench-%d", st.seq), blobs, fresh
}

// stage uploads the blobs of a new image that are not stored yet (with
// files, an empty file for each) and returns its tag and manifest.
func (st *scaleReg) stage(b *testing.B, shared, files bool) (tag string, body []byte, fresh []string) {
	b.Helper()
	tag, blobs, fresh := st.newImage(shared)
	st.upload(b, fresh, files)
	return tag, scaleBody(blobs), fresh
}

// put pushes an image manifest by tag.
func (st *scaleReg) put(b *testing.B, tag string, body []byte) {
	b.Helper()
	if _, err := st.reg.PutManifest(scaleRepo, "", []string{tag}, refcount.MediaTypeOCIManifest, body, ""); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkScaleTagList(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tags, more, err := st.reg.Tags(scaleRepo, "", 100)
		if err != nil || len(tags) != 100 || !more {
			b.Fatalf("%d tags, %v, %v", len(tags), more, err)
		}
	}
}

// BenchmarkScalePutManifest10Layers: a manifest PUT by tag of an image whose
// config and 10 layers were just uploaded (each under a lease the manifest
// takes over).
func BenchmarkScalePutManifest10Layers(b *testing.B) { benchPutManifest(b, false) }

// BenchmarkScalePutManifestSharedLayers: the same with 9 of the 10 layers
// in use by other images already (a new image on a common base).
func BenchmarkScalePutManifestSharedLayers(b *testing.B) { benchPutManifest(b, true) }

func benchPutManifest(b *testing.B, shared bool) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tag, body, _ := st.stage(b, shared, false)
		b.StartTimer()
		st.put(b, tag, body)
	}
}

// BenchmarkScaleDeleteTagCascade: deleting the only tag of an image frees
// the manifest, its config and its 10 layers, and removes their files,
// before it returns.
func BenchmarkScaleDeleteTagCascade(b *testing.B) { benchDeleteTag(b, false) }

// BenchmarkScaleDeleteTagShared: deleting the tag of an image on a common
// base frees the manifest, its config and one layer; 9 layers stay.
func BenchmarkScaleDeleteTagShared(b *testing.B) { benchDeleteTag(b, true) }

func benchDeleteTag(b *testing.B, shared bool) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tag, body, fresh := st.stage(b, shared, true)
		st.put(b, tag, body)
		b.StartTimer()
		freed, err := st.reg.DeleteTag(scaleRepo, tag)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// What was freed is the image's own blobs, and their bytes are gone.
		if want := int64(len(fresh)) * 1000; freed != want {
			b.Fatalf("freed %d bytes, want %d", freed, want)
		}
		for _, d := range fresh {
			if ok, err := st.reg.Blobs().Has(digest.Digest(d)); err != nil || ok {
				b.Fatalf("the bytes of freed blob %s: stored %v, %v", d, ok, err)
			}
		}
		b.StartTimer()
	}
}

func BenchmarkScaleStats(b *testing.B) {
	st := openScale(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := st.reg.Stats(20)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Totals.Blobs < int64(10*st.n) {
			b.Fatalf("stats: %+v", rep.Totals)
		}
	}
}

// BenchmarkScaleStatBlob: a HEAD of a blob, by random digest (no pin).
func BenchmarkScaleStatBlob(b *testing.B) {
	st := openScale(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := digest.Digest(st.blobs[rnd.IntN(len(st.blobs))])
		if _, err := st.reg.StatBlob(scaleRepo, d, false, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleGetManifest: a manifest GET by tag, with its bytes.
func BenchmarkScaleGetManifest(b *testing.B) {
	st := openScale(b)
	rnd := rand.New(rand.NewPCG(1, 3))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		info, err := st.reg.GetManifest(scaleRepo, scaleTag(rnd.IntN(st.n)), true)
		if err != nil || len(info.Content) == 0 {
			b.Fatal(err)
		}
	}
}
