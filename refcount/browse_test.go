package refcount_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// sameBlob uploads the same bytes to each repository and returns their
// digest: one blob linked in several repositories.
func (f *fixture) sameBlob(size int, repos ...string) digest.Digest {
	f.t.Helper()
	b := make([]byte, size)
	f.rnd.Read(b)
	d := digest.FromBytes(b)
	for _, repo := range repos {
		if _, err := f.PutBlob(repo, d, bytes.NewReader(b), int64(size), 0); err != nil {
			f.t.Fatal(err)
		}
	}
	return d
}

// platformIndex pushes under tag an OCI index of children, each given the
// platform of the same position ("os/arch[/variant]").
func (f *fixture) platformIndex(repo, tag string, children []digest.Digest, platforms []string) digest.Digest {
	f.t.Helper()
	var parts []string
	for i, ch := range children {
		info, err := f.GetManifest(repo, string(ch), false)
		if err != nil {
			f.t.Fatal(err)
		}
		p := strings.SplitN(platforms[i], "/", 3)
		plat := fmt.Sprintf(`{"os":%q,"architecture":%q`, p[0], p[1])
		if len(p) == 3 {
			plat += fmt.Sprintf(`,"variant":%q`, p[2])
		}
		parts = append(parts, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"platform":%s}}`,
			info.MediaType, ch, info.Size, plat))
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, refcount.MediaTypeOCIIndex, strings.Join(parts, ","))
	return f.manifest(repo, tag, refcount.MediaTypeOCIIndex, body)
}

// referrer pushes by digest an artifact of the given type whose subject
// is subject, with one annotation.
func (f *fixture) referrer(repo string, subject digest.Digest, artifactType string) digest.Digest {
	f.t.Helper()
	info, err := f.GetManifest(repo, string(subject), false)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := f.blob(repo, 2)
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":%d},"layers":[],`+
		`"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"kind":%q}}`,
		refcount.MediaTypeOCIManifest, artifactType, cfg, f.size(string(cfg)), info.MediaType, subject, info.Size, artifactType)
	return f.manifest(repo, "", refcount.MediaTypeOCIManifest, body)
}

func TestRepositoriesPageFilterAndVisible(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	for _, repo := range []string{"team/a1", "team/a2", "team/a3", "team/a4", "team/a5", "other/x"} {
		f.image(repo, "latest", f.blob(repo, 300))
	}
	f.Clock.Advance(time.Hour)
	later := f.image("team/a3", "v2", f.blob("team/a3", 300))
	q := refcount.RepoQuery{
		Contains: "TEAM/A", Offset: 1, Limit: 2,
		Visible: func(repo string) bool { return repo != "team/a2" },
	}
	page, err := f.Repositories(q)
	if err != nil {
		t.Fatal(err)
	}
	// Matching and visible: a1, a3, a4, a5; the page skips a1.
	if page.Total != 4 {
		t.Errorf("Total = %d, want 4", page.Total)
	}
	var names []string
	for _, row := range page.Rows {
		names = append(names, row.Name)
	}
	if !reflect.DeepEqual(names, []string{"team/a3", "team/a4"}) {
		t.Fatalf("rows = %v, want [team/a3 team/a4]", names)
	}
	info, err := f.GetManifest("team/a3", string(later), false)
	if err != nil {
		t.Fatal(err)
	}
	a3, a4 := page.Rows[0], page.Rows[1]
	if want := regtest.Start.Add(time.Hour).UTC(); !a3.LastPush.Equal(want) {
		t.Errorf("team/a3 LastPush = %v, want %v (its second push, %s)", a3.LastPush, want, info.Digest)
	}
	if !a4.LastPush.Equal(regtest.Start) {
		t.Errorf("team/a4 LastPush = %v, want %v", a4.LastPush, regtest.Start)
	}
	ls, err := f.List("")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range page.Rows {
		for _, want := range ls.Repositories {
			if want.Name == row.Name && want.RepoStats != row.RepoStats {
				t.Errorf("%s stats = %+v, want List's %+v", row.Name, row.RepoStats, want.RepoStats)
			}
		}
	}
	if a3.Tags != 2 || a3.Manifests != 2 || a3.Links != 4 || a3.Bytes == 0 || a3.UniqueBytes != a3.Bytes {
		t.Errorf("team/a3 stats = %+v", a3.RepoStats)
	}

	all, err := f.Repositories(refcount.RepoQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != 6 || len(all.Rows) != 6 || all.Rows[0].Name != "other/x" {
		t.Errorf("all: total %d, %d rows, first %q", all.Total, len(all.Rows), all.Rows[0].Name)
	}
	past, err := f.Repositories(refcount.RepoQuery{Contains: "team", Offset: 10})
	if err != nil {
		t.Fatal(err)
	}
	if past.Total != 5 || len(past.Rows) != 0 {
		t.Errorf("past the end: total %d, %d rows", past.Total, len(past.Rows))
	}
}

func TestRepositoriesCached(t *testing.T) {
	f := newFixture(t, regtest.Options{CachePrefixes: []string{"hub"}})
	f.image("hub/library/alpine", "3", f.blob("hub/library/alpine", 10))
	f.image("local/app", "1", f.blob("local/app", 10))
	page, err := f.Repositories(refcount.RepoQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Rows) != 2 || !page.Rows[0].Cached || page.Rows[1].Cached {
		t.Fatalf("rows = %+v", page.Rows)
	}
	tp, err := f.TagPage("hub/library/alpine", refcount.TagQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !tp.Cached {
		t.Error("tag page of a cached repository not marked Cached")
	}
}

func TestTagPageOffsetSizesAndPlatforms(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	const repo = "app"
	base := f.blob(repo, 1000)
	for i := 0; i < 5; i++ {
		f.image(repo, fmt.Sprintf("t%d", i), base, f.blob(repo, 200+i))
	}
	amd := f.image(repo, "", base)
	arm := f.image(repo, "", base, f.blob(repo, 50))
	idx := f.platformIndex(repo, "multi", []digest.Digest{amd, arm}, []string{"linux/amd64", "linux/arm64/v8"})

	ls, err := f.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	// Tags in name order: multi, t0, t1, t2, t3, t4.
	page, err := f.TagPage(repo, refcount.TagQuery{Offset: 2, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 6 || page.Repo != repo || page.Stats.Tags != 6 || page.Stats.Manifests != 8 {
		t.Errorf("page: total %d, repo %q, stats %+v", page.Total, page.Repo, page.Stats)
	}
	if len(page.Tags) != 3 {
		t.Fatalf("%d tags, want 3", len(page.Tags))
	}
	for i, v := range page.Tags {
		want := ls.Tags[2+i]
		if v.Tag != want.Tag || v.Digest != want.Digest || v.MediaType != want.MediaType ||
			v.Size != want.Size || !v.Created.Equal(want.Created) || v.Platforms != nil {
			t.Errorf("tag %d = %+v, want List's %+v", 2+i, v, want)
		}
	}
	if page.Tags[0].Tag != "t1" {
		t.Errorf("first tag of the page = %q, want t1", page.Tags[0].Tag)
	}

	first, err := f.TagPage(repo, refcount.TagQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Tags) != 1 {
		t.Fatalf("%d tags, want 1", len(first.Tags))
	}
	m := first.Tags[0]
	if m.Tag != "multi" || m.Digest != string(idx) || m.MediaType != refcount.MediaTypeOCIIndex || m.Size != ls.Tags[0].Size {
		t.Errorf("multi = %+v, want List's %+v", m, ls.Tags[0])
	}
	if !reflect.DeepEqual(m.Platforms, []string{"linux/amd64", "linux/arm64/v8"}) {
		t.Errorf("platforms = %q", m.Platforms)
	}
	past, err := f.TagPage(repo, refcount.TagQuery{Offset: 6})
	if err != nil {
		t.Fatal(err)
	}
	if past.Total != 6 || len(past.Tags) != 0 {
		t.Errorf("past the end: total %d, %d tags", past.Total, len(past.Tags))
	}
}

func TestManifestViewSharedLayer(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	shared := f.sameBlob(4000, "a", "b")
	own := f.blob("a", 700)
	cfg := f.blob("a", 100)
	body := imageBody([]string{string(cfg), string(shared), string(own)}, f.size)
	res, err := f.PutManifest("a", "", []string{"one", "latest"}, refcount.MediaTypeOCIManifest, body, "")
	if err != nil {
		t.Fatal(err)
	}
	f.image("a", "two", shared)
	f.image("b", "three", shared)

	v, err := f.ManifestView("a", "one")
	if err != nil {
		t.Fatal(err)
	}
	if v.Digest != string(res.Digest) || v.Repo != "a" || v.MediaType != refcount.MediaTypeOCIManifest ||
		!bytes.Equal(v.Content, body) || v.Size != int64(len(body)) || !v.Created.Equal(regtest.Start) {
		t.Errorf("view = %+v", v)
	}
	if !reflect.DeepEqual(v.Tags, []string{"latest", "one"}) {
		t.Errorf("tags = %v", v.Tags)
	}
	if v.ArtifactType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("artifact type = %q", v.ArtifactType)
	}
	wantCfg := refcount.BlobView{Digest: string(cfg), MediaType: "application/vnd.oci.image.config.v1+json", Size: 100, Images: 1, Repos: 1}
	if v.Config == nil || *v.Config != wantCfg {
		t.Errorf("config = %+v, want %+v", v.Config, wantCfg)
	}
	const layerType = "application/vnd.oci.image.layer.v1.tar+gzip"
	wantLayers := []refcount.BlobView{
		{Digest: string(shared), MediaType: layerType, Size: 4000, Images: 3, Repos: 2},
		{Digest: string(own), MediaType: layerType, Size: 700, Images: 1, Repos: 1},
	}
	if !reflect.DeepEqual(v.Layers, wantLayers) {
		t.Errorf("layers = %+v, want %+v", v.Layers, wantLayers)
	}
	ls, err := f.List("a")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range ls.Tags {
		if row.Tag == "one" && row.Size != v.ImageSize {
			t.Errorf("ImageSize = %d, List's size %d", v.ImageSize, row.Size)
		}
	}
	if v.ImageSize != int64(len(body))+100+4000+700 {
		t.Errorf("ImageSize = %d", v.ImageSize)
	}
	byDigest, err := f.ManifestView("a", string(res.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byDigest, v) {
		t.Errorf("by digest = %+v, by tag = %+v", byDigest, v)
	}
	if v.Children != nil || v.Referrers != nil || v.Subject != "" {
		t.Errorf("children %v, referrers %v, subject %q", v.Children, v.Referrers, v.Subject)
	}
}

func TestManifestViewIndex(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	amd := f.image("m", "", f.blob("m", 10))
	arm := f.image("m", "", f.blob("m", 20))
	idx := f.platformIndex("m", "multi", []digest.Digest{amd, arm}, []string{"linux/amd64", "linux/arm/v7"})
	v, err := f.ManifestView("m", "multi")
	if err != nil {
		t.Fatal(err)
	}
	if v.Digest != string(idx) || v.Config != nil || v.Layers != nil {
		t.Errorf("index view = %+v", v)
	}
	var want []refcount.ChildView
	for i, ch := range []digest.Digest{amd, arm} {
		info, err := f.GetManifest("m", string(ch), false)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, refcount.ChildView{Digest: string(ch), MediaType: info.MediaType,
			Platform: []string{"linux/amd64", "linux/arm/v7"}[i], Size: info.Size})
	}
	if !reflect.DeepEqual(v.Children, want) {
		t.Errorf("children = %+v, want %+v", v.Children, want)
	}
}

func TestManifestViewReferrersTree(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	img := f.image("s", "latest", f.blob("s", 10))
	sbom := f.referrer("s", img, "application/spdx+json")
	f.Clock.Advance(time.Minute)
	sig := f.referrer("s", sbom, "application/vnd.dev.cosign.artifact.sig.v1+json")
	v, err := f.ManifestView("s", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Referrers) != 1 || v.Referrers[0].Digest != string(sbom) {
		t.Fatalf("referrers = %+v, want the SBOM %s", v.Referrers, sbom)
	}
	top := v.Referrers[0]
	if top.ArtifactType != "application/spdx+json" || top.Annotations["kind"] != "application/spdx+json" ||
		top.MediaType != refcount.MediaTypeOCIManifest || top.Size == 0 {
		t.Errorf("SBOM node = %+v", top)
	}
	if len(top.Referrers) != 1 || top.Referrers[0].Digest != string(sig) || len(top.Referrers[0].Referrers) != 0 {
		t.Fatalf("SBOM's referrers = %+v, want the signature %s", top.Referrers, sig)
	}
	if !top.Referrers[0].Created.Equal(regtest.Start.Add(time.Minute)) {
		t.Errorf("signature created %v", top.Referrers[0].Created)
	}
	// The same referrers the API lists.
	api, err := f.Referrers("s", img, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(api) != 1 || api[0].Digest != string(sbom) {
		t.Errorf("API referrers = %+v", api)
	}
	sv, err := f.ManifestView("s", string(sbom))
	if err != nil {
		t.Fatal(err)
	}
	if sv.Subject != string(img) || sv.Annotations["kind"] != "application/spdx+json" || len(sv.Referrers) != 1 {
		t.Errorf("SBOM view: subject %q, annotations %v, referrers %+v", sv.Subject, sv.Annotations, sv.Referrers)
	}
}

func TestBrowseUnknown(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	f.image("here", "latest", f.blob("here", 10))
	if _, err := f.TagPage("nowhere", refcount.TagQuery{}); !errors.Is(err, refcount.ErrNameUnknown) {
		t.Errorf("TagPage of an unknown repository: %v", err)
	}
	if _, err := f.ManifestView("nowhere", "latest"); !errors.Is(err, refcount.ErrNameUnknown) {
		t.Errorf("ManifestView in an unknown repository: %v", err)
	}
	for _, ref := range []string{"gone", string(digest.FromString("nothing"))} {
		_, err := f.ManifestView("here", ref)
		if !errors.Is(err, refcount.ErrManifestUnknown) || errors.Is(err, refcount.ErrNameUnknown) {
			t.Errorf("ManifestView of unknown %s: %v", ref, err)
		}
	}
}

func TestBrowseUniqueBudget(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	f.image("a", "1", f.blob("a", 10)) // 2 links
	f.image("b", "1", f.blob("b", 10)) // 2 links
	defer refcount.SetUniqueBudget(3)()
	page, err := f.Repositories(refcount.RepoQuery{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := page.Rows[0], page.Rows[1]
	if a.UniqueUnknown || a.UniqueBytes == 0 || a.UniqueBytes != a.Bytes {
		t.Errorf("a, within the budget: %+v", a)
	}
	if !b.UniqueUnknown || b.UniqueBytes != 0 || b.Links != 2 || b.Tags != 1 || b.Bytes == 0 {
		t.Errorf("b, past the budget: %+v", b)
	}
	refcount.SetUniqueBudget(1)
	tp, err := f.TagPage("a", refcount.TagQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !tp.UniqueUnknown || tp.Stats.UniqueBytes != 0 || tp.Stats.Bytes != a.Bytes || tp.Stats.Links != 2 {
		t.Errorf("tag page past the budget: %+v %+v", tp.Stats, tp.UniqueUnknown)
	}
}

func TestManifestViewReferrersDepth(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	img := f.image("d", "latest", f.blob("d", 10))
	chain := []digest.Digest{img}
	for i := 0; i < 10; i++ {
		chain = append(chain, f.referrer("d", chain[len(chain)-1], fmt.Sprintf("application/x-level%d", i+1)))
	}
	v, err := f.ManifestView("d", "latest")
	if err != nil {
		t.Fatal(err)
	}
	depth, nodes := 0, v.Referrers
	for len(nodes) > 0 {
		if len(nodes) != 1 || nodes[0].Digest != string(chain[depth+1]) {
			t.Fatalf("level %d = %+v, want %s alone", depth+1, nodes, chain[depth+1])
		}
		depth++
		nodes = nodes[0].Referrers
	}
	if depth != 8 {
		t.Errorf("tree depth %d, want 8", depth)
	}
}

// The store page's overview has the totals and each repository's stored
// figures of Stats, largest first, without unique bytes or a listing of
// the blob store.
func TestStoreOverviewMatchesStats(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	f.ownImage("small/app", "v1", 100)
	f.ownImage("big/app", "v1", 5000)
	f.ownImage("big/app", "v2", 3000)
	st, err := f.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := f.StoreOverview()
	if err != nil {
		t.Fatal(err)
	}
	if ov.Totals != st.Totals || ov.DedupRatio != st.DedupRatio || len(ov.Repositories) != 2 {
		t.Fatalf("overview %+v, stats %+v", ov, st)
	}
	for i, r := range ov.Repositories {
		s := st.Repositories[i]
		if r.Name != s.Name || r.Tags != s.Tags || r.Manifests != s.Manifests || r.Links != s.Links || r.Bytes != s.Bytes || r.UniqueBytes != 0 {
			t.Errorf("row %d: %+v, stats %+v", i, r, s)
		}
	}
	if ov.Repositories[0].Name != "big/app" || ov.BlobStore.BlobBytes != 0 {
		t.Errorf("largest first, no blob store listing: %+v", ov)
	}
}
