package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A data directory written by kvreg at schema version 1 (kv/testdata/
// v1store) is upgraded by kvreg serve and served whole over HTTP: the
// catalog, every tag, every manifest an index lists, every blob a manifest
// references, each with the digest of its bytes; kvreg fsck --deep finds it
// clean afterwards.
func TestServeVersion1Store(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	if err := regtest.CopyDir("../../kv/testdata/v1store", root); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, bin, root)
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string, v any) (http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "+
			"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.Header, b
	}
	var catalog struct{ Repositories []string }
	get("/v2/_catalog", &catalog)
	if fmt.Sprint(catalog.Repositories) != "[team/app team/other]" {
		t.Fatalf("catalog %q", catalog.Repositories)
	}
	type desc struct{ Digest string }
	var manifests, blobs int
	// manifest fetches a manifest and everything it references.
	var manifest func(repo, ref string)
	manifest = func(repo, ref string) {
		var m struct {
			Config    *desc
			Layers    []desc
			Manifests []desc
		}
		h, b := get(fmt.Sprintf("/v2/%s/manifests/%s", repo, ref), &m)
		if d := digest.FromBytes(b).String(); h.Get("Docker-Content-Digest") != d {
			t.Fatalf("%s:%s: Docker-Content-Digest %s, bytes hash to %s", repo, ref, h.Get("Docker-Content-Digest"), d)
		}
		manifests++
		for _, child := range m.Manifests {
			manifest(repo, child.Digest)
		}
		refs := m.Layers
		if m.Config != nil {
			refs = append(refs, *m.Config)
		}
		for _, l := range refs {
			_, b := get(fmt.Sprintf("/v2/%s/blobs/%s", repo, l.Digest), nil)
			if digest.FromBytes(b).String() != l.Digest {
				t.Fatalf("blob %s@%s: bytes hash to %s", repo, l.Digest, digest.FromBytes(b))
			}
			blobs++
		}
	}
	for _, repo := range catalog.Repositories {
		var tags struct{ Tags []string }
		get("/v2/"+repo+"/tags/list", &tags)
		sort.Strings(tags.Tags)
		for _, tag := range tags.Tags {
			manifest(repo, tag)
		}
	}
	// team/app: latest, multi (an index of two images) and v1; team/other: v1.
	if manifests != 6 || blobs < 8 {
		t.Fatalf("served %d manifests and %d blobs; the version 1 store holds more", manifests, blobs)
	}
	stopServer(t, s)
	if out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root); code != 0 {
		t.Fatalf("fsck --deep after serving the upgraded store: exit %d\n%s%s", code, out, errOut)
	}
}
