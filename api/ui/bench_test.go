package ui_test

// Benchmarks of whole pages at the scale they must stay fast at: the
// repository list among 10,000 repositories and a repository page of
// 10,000 tags, each the handler rendering HTML into a recorder (bbolt).
//
//	go test -run '^$' -bench '10k' ./api/ui
//
// The stores are written through the registry's public write path (links
// and manifest pushes, one transaction each). Their data directory is on
// tmpfs (/dev/shm) when the machine has one, where an fsync costs nothing,
// so that 30,000 commits take seconds; the pages read the database's
// memory map either way.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// benchEnv opens a registry for a benchmark, on tmpfs when there is one.
// The closing fsck is left out: it would check 10,000 repositories.
func benchEnv(b *testing.B) *env {
	b.Helper()
	o := regtest.Options{Backend: regtest.Default(), NoCheck: true}
	if dir, err := os.MkdirTemp("/dev/shm", "kvreg-ui-bench"); err == nil {
		b.Cleanup(func() { os.RemoveAll(dir) })
		o.Root = dir
	}
	return newEnvWith(b, api.Config{}, o)
}

// render runs the whole handler for path and checks the status.
func render(b *testing.B, h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://kvreg.test"+path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: status %d", path, rec.Code)
	}
	return rec
}

// BenchmarkRepoListPage10k renders the second page of a search matching
// half of 10,000 repositories, each holding one tagged image.
func BenchmarkRepoListPage10k(b *testing.B) {
	e := benchEnv(b)
	start := time.Now()
	cfg := e.config("seed/app", "seed")
	layer := e.layer("seed/app", 1000)
	body := manifestJSON{MediaType: refcount.MediaTypeOCIManifest, Config: &cfg, Layers: []descriptor{layer}}
	for i := range 10_000 {
		repo := fmt.Sprintf("%s/app%05d", []string{"web", "data"}[i%2], i)
		for _, d := range []string{cfg.Digest, layer.Digest} {
			if _, err := e.reg.Mount(repo, "seed/app", digest.Digest(d)); err != nil {
				b.Fatal(err)
			}
		}
		e.put(repo, body, "latest")
	}
	b.Logf("10,000 repositories pushed in %v", time.Since(start).Round(time.Millisecond))
	h := api.New(e.reg.Registry, api.Config{UI: true})
	rec := render(b, h, "/ui/?q=web&page=2")
	p := page{status: rec.Code, body: rec.Body.String()}
	if rows := p.all(`<tr data-repo="([^"]+)"`); len(rows) != 50 || rows[0] != "web/app00100" {
		b.Fatalf("rows %d, first %v", len(rows), rows[:1])
	}
	p.has(b, `<span id="total" data-n="5000">`)
	start = time.Now()
	render(b, h, "/ui/store")
	b.Logf("the store page (every repository's figures) rendered in %v", time.Since(start).Round(time.Millisecond))
	for b.Loop() {
		render(b, h, "/ui/?q=web&page=2")
	}
}

// BenchmarkRepoPage10kTags renders the middle page of a repository of
// 10,000 tags: 100 images (each of its own config and a shared layer),
// each under 100 tags, tag i naming image i%100, so that every page shows
// 100 different images.
func BenchmarkRepoPage10kTags(b *testing.B) {
	e := benchEnv(b)
	start := time.Now()
	layer := e.layer("big/app", 1000)
	const images = 100
	for m := range images {
		cfg := e.config("big/app", fmt.Sprintf("image %d", m))
		tags := make([]string, 0, 10_000/images)
		for i := m; i < 10_000; i += images {
			tags = append(tags, fmt.Sprintf("v%05d", i))
		}
		e.put("big/app", manifestJSON{MediaType: refcount.MediaTypeOCIManifest, Config: &cfg, Layers: []descriptor{layer}}, tags...)
	}
	b.Logf("10,000 tags pushed in %v", time.Since(start).Round(time.Millisecond))
	h := api.New(e.reg.Registry, api.Config{UI: true})
	rec := render(b, h, "/ui/r/big/app?page=51")
	p := page{status: rec.Code, body: rec.Body.String()}
	if tags := p.all(`<tr data-tag="([^"]+)"`); len(tags) != 100 || tags[0] != "v05000" {
		b.Fatalf("tags %d, first %v", len(tags), tags[:1])
	}
	p.has(b, `<a rel="next" href="/ui/r/big/app?page=52">`, `<a rel="prev" href="/ui/r/big/app?page=50">`)
	for b.Loop() {
		render(b, h, "/ui/r/big/app?page=51")
	}
}
