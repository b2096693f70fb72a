package api_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
)

func sha512Blob(mediaType string, data []byte) blob {
	sum := sha512.Sum512(data)
	return blob{MediaType: mediaType, Data: data, Digest: "sha512:" + hex.EncodeToString(sum[:])}
}

// sha512 blobs upload (monolithic and chunked), are referenced by a
// manifest, pull, and are freed with it; Range requests serve exact slices.
func TestE2ESHA512AndRange(t *testing.T) {
	r, rng := startSeeded(t, 14)
	l1 := sha512Blob(mtOCILayer, randomBytes(rng, 70<<10))
	l2 := sha512Blob(mtOCILayer, randomBytes(rng, 33<<10))
	img := ociImage(configBlob(rng, mtOCIConfig), []blob{l1, l2}, imageOpts{})

	r.pushBlob("s512", *img.Config)
	r.pushBlob("s512", l1)
	r.pushBlobChunked("s512", l2, 10<<10)
	r.pushManifest("s512", "v1", img)
	r.pull("s512", "v1", img)
	if !r.hasBlobFile(l1) || !r.hasBlobFile(l2) {
		t.Fatalf("sha512 blob files missing: %v", r.blobFiles())
	}

	g := r.get("/v2/s512/blobs/"+l1.Digest, hdr("Range", "bytes=100-1099"))
	expectStatus(t, "ranged GET", g, http.StatusPartialContent)
	if !bytes.Equal(g.Body, l1.Data[100:1100]) {
		t.Errorf("ranged GET: %d bytes, not bytes 100-1099", len(g.Body))
	}
	if got := g.Header.Get("Content-Range"); got != "bytes 100-1099/"+itoa(len(l1.Data)) {
		t.Errorf("ranged GET: Content-Range %q", got)
	}
	h := r.head("/v2/s512/blobs/"+l1.Digest, nil)
	expectStatus(t, "HEAD", h, http.StatusOK)
	if h.Header.Get("Content-Length") != itoa(len(l1.Data)) || h.Header.Get("Docker-Content-Digest") != l1.Digest {
		t.Errorf("HEAD: headers %v", h.Header)
	}
	r.checkInvariants(img.Blobs())

	expectStatus(t, "DELETE", r.del("/v2/s512/manifests/v1"), http.StatusAccepted)
	// The HEAD above pinned l1 for the pin window (a push may have asked);
	// everything else went with the manifest.
	r.expectBlobFiles([]blob{l1})
	r.reg.Clock.Advance(11 * time.Minute)
	r.sweep()
	r.expectBlobFiles()
	r.checkInvariants()
}

// A streamed upload: PATCH bodies without Content-Range (and without
// Content-Length), then PUT.
func TestE2EStreamedUpload(t *testing.T) {
	r, rng := startSeeded(t, 15)
	b := randomLayer(rng, mtOCILayer, 300<<10)
	img := ociImage(configBlob(rng, mtOCIConfig), []blob{b}, imageOpts{})
	r.pushBlob("stream", *img.Config)

	loc := r.startUpload("stream")
	for _, part := range [][]byte{b.Data[:100<<10], b.Data[100<<10:]} {
		req, err := http.NewRequest(http.MethodPatch, r.url(loc), io.MultiReader(bytes.NewReader(part)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/octet-stream")
		resp := r.send(req)
		expectStatus(t, "streamed PATCH", resp, http.StatusAccepted)
		if l := resp.Header.Get("Location"); l != "" {
			loc = l
		}
	}
	s := r.get(loc, nil)
	expectStatus(t, "status", s, http.StatusNoContent)
	if got := s.Header.Get("Range"); got != "0-"+itoa(len(b.Data)-1) {
		t.Errorf("status Range %q", got)
	}
	expectStatus(t, "PUT", r.do(http.MethodPut, withQuery(loc, "digest", b.Digest), nil, nil), http.StatusCreated)
	r.pushManifest("stream", "v1", img)
	r.pull("stream", "v1", img)
	r.checkInvariants(img.Blobs())
}

// Tag and catalog listings paginate with n and last and a Link header.
func TestE2EListingPagination(t *testing.T) {
	r, rng := startSeeded(t, 16)
	img := randomOCIImage(rng, nil, 1<<10)
	r.pushImage("pages/a", "t0", img)
	tags := []string{"t0", "t1", "t2", "t3", "t4"}
	for _, tag := range tags[1:] {
		r.pushManifest("pages/a", tag, img)
	}
	for _, repo := range []string{"pages/b", "pages/c"} {
		r.pushImage(repo, "x", img)
	}

	follow := func(first string, key string) []string {
		t.Helper()
		var all []string
		next := first
		for i := 0; next != "" && i < 20; i++ {
			resp := r.get(next, nil)
			expectStatus(t, "GET "+next, resp, http.StatusOK)
			var v map[string]json.RawMessage
			if err := json.Unmarshal(resp.Body, &v); err != nil {
				t.Fatal(err)
			}
			var page []string
			if err := json.Unmarshal(v[key], &page); err != nil {
				t.Fatalf("%s: %v", resp.Body, err)
			}
			if len(page) > 2 {
				t.Fatalf("page of %d with n=2", len(page))
			}
			all = append(all, page...)
			next = ""
			if link := resp.Header.Get("Link"); link != "" {
				start, end := strings.Index(link, "<"), strings.Index(link, ">")
				if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
					t.Fatalf("Link header %q", link)
				}
				next = link[start+1 : end]
			}
		}
		return all
	}
	if got := follow("/v2/pages/a/tags/list?n=2", "tags"); strings.Join(got, ",") != strings.Join(tags, ",") {
		t.Errorf("paginated tags %v, want %v", got, tags)
	}
	if got := follow("/v2/_catalog?n=2", "repositories"); strings.Join(got, ",") != "pages/a,pages/b,pages/c" {
		t.Errorf("paginated catalog %v", got)
	}
	got, _ := r.tags("pages/a")
	if strings.Join(got, ",") != strings.Join(tags, ",") {
		t.Errorf("tags %v", got)
	}
	resp := r.get("/v2/pages/a/tags/list?last=t2", nil)
	var v struct{ Tags []string }
	json.Unmarshal(resp.Body, &v)
	if strings.Join(v.Tags, ",") != "t3,t4" {
		t.Errorf("tags after t2: %v", v.Tags)
	}
	r.checkInvariants(img.Blobs())
}

// A manifest pushed by digest with tag query parameters gets those tags.
func TestE2EPushByDigestWithTags(t *testing.T) {
	r, rng := startSeeded(t, 17)
	img := randomOCIImage(rng, nil, 2<<10)
	for _, b := range img.Blobs() {
		r.pushBlob("qt", b)
	}
	resp := r.putManifest("qt", img.Digest+"?tag=a&tag=b", img.MediaType, img.Body)
	expectStatus(t, "PUT by digest with tags", resp, http.StatusCreated)
	if got := resp.Header.Get("OCI-Tag"); !strings.Contains(got, "a") || !strings.Contains(got, "b") {
		t.Errorf("OCI-Tag %q", got)
	}
	r.expectTags("qt", "a", "b")
	r.pull("qt", "a", img)
	r.checkInvariants(img.Blobs())
}

// A read-only server serves pulls and refuses every write, changing nothing.
func TestE2EReadOnly(t *testing.T) {
	r, rng := startSeeded(t, 18)
	img := randomOCIImage(rng, nil, 3<<10)
	r.pushImage("ro", "v1", img)

	rr := r.also(api.New(r.reg.Registry, api.Config{ReadOnly: true}))
	rr.pull("ro", "v1", img)
	extra := randomLayer(rng, mtOCILayer, 1<<10)
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, "/v2/ro/blobs/uploads/?digest=" + url.QueryEscape(extra.Digest), extra.Data},
		{http.MethodPost, "/v2/ro/blobs/uploads/", nil},
		{http.MethodPut, "/v2/ro/manifests/v2", img.Body},
		{http.MethodDelete, "/v2/ro/manifests/v1", nil},
		{http.MethodDelete, "/v2/ro/manifests/" + img.Digest, nil},
		{http.MethodDelete, "/v2/ro/blobs/" + img.Layers[0].Digest, nil},
	} {
		resp := rr.do(c.method, c.path, hdr("Content-Type", img.MediaType), c.body)
		if resp.Status < 400 || resp.Status >= 500 {
			t.Errorf("read-only %s %s: %s, want a 4xx refusal", c.method, c.path, resp)
			continue
		}
		if codes, err := decodeErrorCodes(resp); err != nil || len(codes) == 0 {
			t.Errorf("read-only %s %s: body %s", c.method, c.path, resp)
		}
	}
	r.expectTags("ro", "v1")
	r.pull("ro", "v1", img)
	r.checkInvariants(img.Blobs())
}
