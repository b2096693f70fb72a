package refcount_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// BenchmarkClusterPushReruns pushes as the cluster bench does, through
// three replicas sharing one PostgreSQL database, every request to the
// next replica: 8 clients, 4 repositories, images of 3 base layers that
// every image shares, 2 layers and a config of their own. Each blob is
// HEAD'd first (pinning it when found) and uploaded when absent, then the
// manifest is put by tag; all clients have one client key, as the bench's
// share one address. The registries' clock moves 1 ms per request. It reports the write transactions' reruns per write
// (kv.TxStats, summed over the replicas): a count of conflicts, which a
// busy machine changes less than it changes timings.
//
//	KVREG_TEST_BACKENDS=postgres go test -run '^$' -bench ClusterPushReruns -benchtime 1x ./refcount/
func BenchmarkClusterPushReruns(b *testing.B) {
	bs, err := regtest.Backends()
	if err != nil {
		b.Fatal(err)
	}
	var be *regtest.Backend
	for i := range bs {
		if bs[i].DB == "postgres" {
			be = &bs[i]
			break
		}
	}
	if be == nil {
		b.Skipf("replicas share a PostgreSQL database: %s=postgres", regtest.EnvBackends)
	}
	const (
		clients, repos, images = 8, 4, 64
		client                 = "bench"
	)
	var updates, retries, gaveUp uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		first := regtest.Open(b, regtest.Options{Backend: *be, Shared: true})
		regs := []*regtest.Registry{first, first.Replica(), first.Replica()}
		rnd := rand.New(rand.NewSource(int64(i)))
		blobOf := func(n int) []byte { p := make([]byte, n); rnd.Read(p); return p }
		base := [][]byte{blobOf(4096), blobOf(4096), blobOf(4096)}
		type image struct {
			repo, tag string
			blobs     [][]byte // config, then layers
		}
		var work []image
		for j := 0; j < images; j++ {
			im := image{repo: fmt.Sprintf("bench/app%d", j%repos), tag: fmt.Sprintf("v%d", j)}
			im.blobs = append(im.blobs, blobOf(300), base[0], base[1], base[2], blobOf(1024), blobOf(1024))
			work = append(work, im)
		}
		stats := func() (u, r, g uint64) {
			for _, reg := range regs {
				s, _ := reg.StoreStats()
				u, r, g = u+s.Updates, r+s.Retries, g+s.GaveUp
			}
			return
		}
		u0, r0, g0 := stats()
		var mu sync.Mutex
		var next, turn int
		replica := func() *refcount.Registry {
			mu.Lock()
			defer mu.Unlock()
			// Time passes between requests, so that what is keyed by
			// time (leases, pin expiries) sorts as a wall clock makes it.
			first.Clock.Advance(time.Millisecond)
			turn++
			return regs[turn%len(regs)].Registry
		}
		take := func() (image, bool) {
			mu.Lock()
			defer mu.Unlock()
			if next == len(work) {
				return image{}, false
			}
			next++
			return work[next-1], true
		}
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		b.StartTimer()
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					im, ok := take()
					if !ok {
						return
					}
					if err := pushImage(replica, im.repo, im.tag, im.blobs, client); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		u1, r1, g1 := stats()
		updates, retries, gaveUp = updates+u1-u0, retries+r1-r0, gaveUp+g1-g0
	}
	b.ReportMetric(float64(retries)/float64(updates), "reruns/write")
	b.ReportMetric(float64(updates)/float64(b.N), "writes/op")
	b.ReportMetric(float64(gaveUp), "gave-up")
}

// pushImage pushes one image as a client does, each request to the
// replica that replica() names.
func pushImage(replica func() *refcount.Registry, repo, tag string, blobs [][]byte, client string) error {
	sizes := map[string]int64{}
	var ds []string
	for _, p := range blobs {
		d := digest.FromBytes(p)
		ds = append(ds, string(d))
		sizes[string(d)] = int64(len(p))
		if _, err := replica().StatBlob(repo, d, true, client); err == nil {
			continue
		}
		if _, err := replica().PutBlobFor(repo, d, bytes.NewReader(p), int64(len(p)), 0, client); err != nil {
			return fmt.Errorf("put blob %s into %s: %w", d, repo, err)
		}
	}
	body := imageBody(ds, func(d string) int64 { return sizes[d] })
	if _, err := replica().PutManifest(repo, "", []string{tag}, refcount.MediaTypeOCIManifest, body, client); err != nil {
		return fmt.Errorf("put manifest %s:%s: %w", repo, tag, err)
	}
	return nil
}
