package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// The repository list shows each repository with its bytes and unique
// bytes as the store counts them, the total, and the security headers.
func TestReposPage(t *testing.T) {
	e := newEnv(t, api.Config{})
	shared := e.layer("team/app", 3000)
	e.image("team/app", "v1", shared, e.layer("team/app", 1000))
	if _, err := e.reg.Mount("team/web", "team/app", digestOf(shared)); err != nil {
		t.Fatal(err)
	}
	e.image("team/web", "latest", shared)

	p := e.get("/ui/", "").want(t, http.StatusOK)
	p.has(t, `<a id="nav-repos" href="/ui/">`, `<a id="nav-store" href="/ui/store">`, `<h1>Repositories</h1>`,
		`<form id="search" method="get"`, `name="q"`, `<table id="repos">`,
		`<tr data-repo="team/app">`, `<a class="repo" href="/ui/r/team/app">`, `<tr data-repo="team/web">`,
		`<span id="total" data-n="2">`)
	st, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Repositories {
		row := rowOf(t, p.body, `data-repo="`+r.Name+`"`)
		if !strings.Contains(row, fmt.Sprintf(`data-bytes="%d"`, r.Bytes)) || !strings.Contains(row, fmt.Sprintf(`data-unique="%d"`, r.UniqueBytes)) {
			t.Errorf("row of %s lacks bytes %d / unique %d: %s", r.Name, r.Bytes, r.UniqueBytes, row)
		}
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if p.cookie(t) == "" {
		t.Error("empty CSRF cookie")
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") {
		t.Error("inline script or style on the page: the policy forbids it")
	}
}

// rowOf is the <tr> of the page holding attr.
func rowOf(t testing.TB, body, attr string) string {
	t.Helper()
	i := strings.Index(body, attr)
	if i < 0 {
		t.Fatalf("no row with %s", attr)
	}
	j := strings.Index(body[i:], "</tr>")
	return body[i : i+j]
}

// Search filters by a substring of the name; pages are 50 rows, linked by
// rel=next and rel=prev, the search kept in the links.
func TestReposSearchAndPaging(t *testing.T) {
	e := newEnv(t, api.Config{})
	for i := range 60 {
		e.blob(fmt.Sprintf("alpha/r%02d", i), []byte(fmt.Sprintf("blob %d", i)))
	}
	e.blob("beta/one", []byte("beta"))

	p := e.get("/ui/", "").want(t, http.StatusOK)
	if n := len(p.all(`<tr data-repo="([^"]+)"`)); n != 50 {
		t.Errorf("first page has %d rows, want 50", n)
	}
	p.has(t, `<span id="total" data-n="61">`, `<a rel="next" href="/ui/?page=2">`)
	p.lacks(t, `rel="prev"`)

	p = e.get("/ui/?q=ALPHA&page=2", "").want(t, http.StatusOK)
	rows := p.all(`<tr data-repo="([^"]+)"`)
	if len(rows) != 10 || rows[0] != "alpha/r50" {
		t.Errorf("page 2 of alpha: %v", rows)
	}
	p.has(t, `<span id="total" data-n="60">`, `<a rel="prev" href="/ui/?q=ALPHA">`, `value="ALPHA"`)
	p.lacks(t, `rel="next"`, `beta/one`)
}

// A repository's page lists its tags with their digests, sizes and
// platforms; an unknown repository is an HTML 404.
func TestRepoPage(t *testing.T) {
	e := newEnv(t, api.Config{})
	a := e.image("team/app", "v1", e.layer("team/app", 2000))
	b := e.image("team/app", "v2", e.layer("team/app", 500))
	idx := e.put("team/app", manifestJSON{MediaType: refcount.MediaTypeOCIIndex, Manifests: []descriptor{
		withPlatform(a, "linux", "amd64"), withPlatform(b, "linux", "arm64")}}, "multi")

	p := e.get("/ui/r/team/app", "").want(t, http.StatusOK)
	p.has(t, `<h1>team/app`, `<table id="tags">`, `<tr data-tag="v1">`, `<tr data-tag="v2">`, `<tr data-tag="multi">`,
		`<a class="digest" href="/ui/r/team/app@`+a.Digest+`"`, `<a class="digest" href="/ui/r/team/app@`+idx.Digest+`"`,
		`linux/amd64, linux/arm64`,
		`<a class="delete" href="/ui/delete?target=team/app:v1">`, `<a id="delete-repo" href="/ui/delete?target=team/app"`)
	ls, err := e.reg.List("team/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ls.Tags {
		row := rowOf(t, p.body, `data-tag="`+tr.Tag+`"`)
		if !strings.Contains(row, fmt.Sprintf(`data-bytes="%d"`, tr.Size)) {
			t.Errorf("row of %s lacks size %d: %s", tr.Tag, tr.Size, row)
		}
	}

	e.get("/ui/r/team/nothing", "").want(t, http.StatusNotFound).has(t, "<h1>Not found</h1>", `id="nav-repos"`)
	e.get("/ui/no/such/page", "").want(t, http.StatusNotFound).has(t, "<h1>Not found</h1>")

	loc := e.get("/ui/r/team/app:v2", "").want(t, http.StatusFound).header.Get("Location")
	if loc != "/ui/r/team/app@"+b.Digest {
		t.Errorf("tag redirects to %q", loc)
	}
}

func withPlatform(d descriptor, os, arch string) descriptor {
	d.Platform = &platform{OS: os, Architecture: arch}
	return d
}

// A manifest's page: the pull command, config and layers with how many
// images share each, the config's history and labels, annotations, the
// referrers as a tree, an index's children.
func TestManifestPage(t *testing.T) {
	e := newEnv(t, api.Config{})
	shared := e.layer("team/app", 4000)
	own := e.layer("team/app", 1000)
	img := e.image("team/app", "v1", shared, own)
	e.image("team/app", "v2", shared)

	empty, _ := e.blob("team/app", []byte("{}"))
	emptyCfg := descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty.String(), Size: 2}
	sbom := e.put("team/app", manifestJSON{MediaType: refcount.MediaTypeOCIManifest, ArtifactType: "application/vnd.example.sbom",
		Config: &emptyCfg, Layers: []descriptor{e.layer("team/app", 300)}, Subject: &img,
		Annotations: map[string]string{"org.example.kind": "sbom"}})
	sig := e.put("team/app", manifestJSON{MediaType: refcount.MediaTypeOCIManifest, ArtifactType: "application/vnd.example.signature",
		Config: &emptyCfg, Layers: []descriptor{e.layer("team/app", 100)}, Subject: &sbom})

	p := e.get("/ui/r/team/app@"+img.Digest, "").want(t, http.StatusOK)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	p.has(t, `<code id="pull-command">docker pull `+host+`/team/app@`+img.Digest+`</code>`,
		`<button type="button" class="copy" data-copy="pull-command"`,
		`<table id="layers">`,
		fmt.Sprintf(`<tr data-digest="%s" data-size="%d" data-images="2">`, shared.Digest, shared.Size),
		fmt.Sprintf(`<tr data-digest="%s" data-size="%d" data-images="1">`, own.Digest, own.Size),
		`<tr class="config" data-digest="`,
		`<section id="history">`, `/bin/sh -c build team/app:v1`,
		`<section id="labels">`, `org.example.name`,
		`<section id="annotations">`, `org.example.tag`,
		`<section id="referrers">`, `<li data-digest="`+sbom.Digest+`">`, `<li data-digest="`+sig.Digest+`">`,
		`application/vnd.example.sbom`,
		`<a id="delete-image" href="/ui/delete?target=team/app@`+img.Digest+`"`)
	// The signature sits inside the SBOM's item.
	i, j := strings.Index(p.body, `<li data-digest="`+sbom.Digest+`">`), strings.Index(p.body, `<li data-digest="`+sig.Digest+`">`)
	if !(i < j && strings.Count(p.body[i:j], "<ul") == 1) {
		t.Errorf("the signature is not nested under the SBOM")
	}

	idx := e.put("team/app", manifestJSON{MediaType: refcount.MediaTypeOCIIndex, Manifests: []descriptor{withPlatform(img, "linux", "amd64")}}, "multi")
	p = e.get("/ui/r/team/app@"+idx.Digest, "").want(t, http.StatusOK)
	p.has(t, `<table id="children">`, `<tr data-digest="`+img.Digest+`">`, `linux/amd64`)
	p.lacks(t, `<section id="history">`, `<table id="layers">`)

	e.get("/ui/r/team/app@sha256:"+strings.Repeat("0", 64), "").want(t, http.StatusNotFound)
}

// The store page: totals, the dedup ratio, leases, and the chart's bars.
func TestStorePage(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.image("team/app", "v1", e.layer("team/app", 5000))
	e.image("team/web", "v1", e.layer("team/web", 1000))
	p := e.get("/ui/store", "").want(t, http.StatusOK)
	st, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	p.has(t, `<section id="totals">`, `<span id="dedup">`, `<span id="leases">`, `<svg id="largest"`,
		fmt.Sprintf(`data-bytes="%d"`, st.Totals.BlobBytes))
	for _, r := range st.Repositories {
		p.has(t, fmt.Sprintf(`<rect class="bar" data-repo="%s" data-bytes="%d"`, r.Name, r.Bytes))
	}
}

// Static files are served with a long cache life under hashed names; the
// root redirects to the UI; with the UI off there is none.
func TestStaticRootAndOff(t *testing.T) {
	e := newEnv(t, api.Config{})
	p := e.get("/ui/", "").want(t, http.StatusOK)
	css := p.all(`<link rel="stylesheet" href="([^"]+)"`)
	js := p.all(`<script src="([^"]+)"`)
	if len(css) != 1 || len(js) != 1 {
		t.Fatalf("stylesheet %v, script %v", css, js)
	}
	for _, path := range append(css, js...) {
		s := e.get(path, "").want(t, http.StatusOK)
		if cc := s.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
	}
	e.get("/ui/static/style.css", "").want(t, http.StatusNotFound)
	for _, path := range []string{"/", "/ui"} {
		if loc := e.get(path, "").want(t, http.StatusFound).header.Get("Location"); loc != "/ui/" {
			t.Errorf("%s redirects to %q", path, loc)
		}
	}

	off := newEnv(t, api.Config{})
	off.srv.Config.Handler = api.New(off.reg.Registry, api.Config{})
	off.get("/ui/", "").want(t, http.StatusNotFound).lacks(t, "<h1>")
	off.get("/", "").want(t, http.StatusNotFound)
}

func digestOf(d descriptor) digest.Digest { return digest.Digest(d.Digest) }
