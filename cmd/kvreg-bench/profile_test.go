package main

// Benchmarks of kvreg over HTTP in this process, for profiling the server's
// paths with the same client the load tool uses:
//
//	go test -run '^$' -bench Push -benchtime 3x -cpuprofile cpu.out -memprofile mem.out ./cmd/kvreg-bench
//	go tool pprof -top -focus 'kvreg/(api|refcount|kv|blobs)' cpu.out
//
// The client runs in the same process: focus on kvreg's packages to see
// the server's share.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// BenchmarkPush: the push step of the default workload (64 images of 3
// shared 4 MiB layers and 2 own 1 MiB layers, 8 clients) against a fresh
// kvreg each time.
func BenchmarkPush(b *testing.B) {
	var images int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		url, root := startKvreg(b)
		cfg := DefaultConfig()
		cfg.URL, cfg.DataDir = url, root
		bn, err := newBench(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := bn.generate(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := bn.push(context.Background()); err != nil {
			b.Fatal(err)
		}
		images += cfg.Images
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPull: the pull step of the default workload (every image, its
// layers verified by the client), 8 clients.
func BenchmarkPull(b *testing.B) {
	url, root := startKvreg(b)
	cfg := DefaultConfig()
	cfg.URL, cfg.DataDir = url, root
	bn, err := newBench(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := bn.generate(); err != nil {
		b.Fatal(err)
	}
	if err := bn.push(context.Background()); err != nil {
		b.Fatal(err)
	}
	var n int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bn.pull(context.Background()); err != nil {
			b.Fatal(err)
		}
		n += bn.res.PullBytes
	}
	b.ReportMetric(float64(n)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// BenchmarkHead: HEAD of blobs with 8 clients, for HeadFor each time.
func BenchmarkHead(b *testing.B) {
	url, root := startKvreg(b)
	cfg := DefaultConfig()
	cfg.URL, cfg.DataDir, cfg.Images, cfg.HeadFor = url, root, 16, time.Second
	bn, err := newBench(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := bn.generate(); err != nil {
		b.Fatal(err)
	}
	if err := bn.push(context.Background()); err != nil {
		b.Fatal(err)
	}
	var n int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bn.head(context.Background()); err != nil {
			b.Fatal(err)
		}
		n += bn.res.HeadRequests
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkTagListHTTP: GET /v2/<name>/tags/list?n=100, the first page of a
// repository of 100,000 tags, over HTTP (kvreg aims at under 5 ms).
func BenchmarkTagListHTTP(b *testing.B) {
	reg, err := refcount.OpenRoot(b.TempDir(), kv.Options{}, refcount.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	const repo, tags = "big/tags", 100_000
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		string(digest.FromString("config")) + `","size":6},"layers":[]}`)
	md := string(digest.FromBytes(body))
	err = reg.DB().Update(func(tx *kv.Tx) error {
		cfg := string(digest.FromString("config"))
		if err := tx.CreateBlob(cfg, kv.Blob{Size: 6, Created: 1}); err != nil {
			return err
		}
		if err := tx.PutLink(repo, cfg, kv.Link{Refs: 1}); err != nil {
			return err
		}
		m := kv.Manifest{Refs: tags, Created: 1, MediaType: refcount.MediaTypeOCIManifest, Size: int64(len(body)), Blobs: []string{cfg}}
		if err := tx.PutManifest(repo, md, m, body); err != nil {
			return err
		}
		for i := 0; i < tags; i++ {
			if err := tx.PutTag(repo, fmt.Sprintf("t%06d", i), md, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.New(reg, api.Config{}))
	defer srv.Close()
	client := &http.Client{}
	u := srv.URL + "/v2/" + repo + "/tags/list?n=100"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < int64(100*len(`"t000000",`)) {
			b.Fatalf("%s, %d bytes", resp.Status, n)
		}
	}
}

// BenchmarkServeFile: one 256 MiB file served by http.ServeContent three
// ways, fetched over loopback: through ResponseWriter.ReadFrom (sendfile),
// through a wrapper that calls ReadFrom 256 KiB at a time (as kvreg's
// api.recorder does), and with ReadFrom hidden (a copy through user space).
func BenchmarkServeFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "blob")
	if err := os.WriteFile(path, content(1, kindLarge, 1, 0, 256<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, way := range []string{"sendfile", "sendfile-256KiB", "copy"} {
		b.Run(way, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, err := os.Open(path)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				defer f.Close()
				switch way {
				case "sendfile-256KiB":
					w = chunkedReadFrom{w, 256 << 10}
				case "copy":
					w = hideReadFrom{w}
				}
				http.ServeContent(w, r, "", time.Time{}, f)
			}))
			defer srv.Close()
			b.SetBytes(256 << 20)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := http.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != 256<<20 {
					b.Fatalf("%d bytes, %v", n, err)
				}
			}
		})
	}
}

type chunkedReadFrom struct {
	http.ResponseWriter
	chunk int64
}

func (w chunkedReadFrom) ReadFrom(src io.Reader) (int64, error) {
	rf := w.ResponseWriter.(io.ReaderFrom)
	inner, limit := src, int64(-1)
	lr, ok := src.(*io.LimitedReader)
	if ok {
		inner, limit = lr.R, lr.N
	}
	var total int64
	var err error
	for limit < 0 || total < limit {
		c := w.chunk
		if limit >= 0 && limit-total < c {
			c = limit - total
		}
		var n int64
		n, err = rf.ReadFrom(&io.LimitedReader{R: inner, N: c})
		total += n
		if err != nil || n < c {
			break
		}
	}
	if ok {
		lr.N -= total
	}
	return total, err
}

type hideReadFrom struct{ w http.ResponseWriter }

func (h hideReadFrom) Header() http.Header         { return h.w.Header() }
func (h hideReadFrom) Write(p []byte) (int, error) { return h.w.Write(p) }
func (h hideReadFrom) WriteHeader(code int)        { h.w.WriteHeader(code) }
