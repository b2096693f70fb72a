package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// After a DELETE by digest the registry never says a layer exists that it
// no longer has: HEAD is 404 at once, a mount is refused, and pushing the
// same image again uploads the blobs and then pulls.
func TestE2EDeleteThenRepush(t *testing.T) {
	r, rng := startSeeded(t, 2)
	img := randomOCIImage(rng, nil, 64<<10, 32<<10, 1000)

	r.pushImage("nolies", "v1", img)
	r.pull("nolies", "v1", img)

	_, storedBefore := r.storedSize()
	resp := r.del("/v2/nolies/manifests/" + img.Digest)
	expectStatus(t, "DELETE manifest by digest", resp, http.StatusAccepted)
	// The bytes went with the DELETE, from the storage itself.
	r.expectStoredGone(img.Blobs())
	if _, storedAfter := r.storedSize(); storedBefore-storedAfter < blobBytes(img.Blobs()) {
		t.Fatalf("DELETE freed %d bytes of storage, want at least %d", storedBefore-storedAfter, blobBytes(img.Blobs()))
	}

	for _, b := range img.Blobs() {
		r.expectBlobGone("nolies", b)
	}
	r.expectManifestGone("nolies", img.Digest)
	r.expectManifestGone("nolies", "v1")
	r.expectBlobFiles()
	if cat := r.catalog(); contains(cat, "nolies") {
		t.Errorf("catalog still lists the emptied repository: %v", cat)
	}

	// Push it again the way a client does: ask, be told "missing", upload.
	for _, b := range img.Blobs() {
		if h := r.head("/v2/nolies/blobs/"+b.Digest, nil); h.Status != http.StatusNotFound {
			t.Fatalf("HEAD %s before re-push: %d, want 404", b.Digest, h.Status)
		}
		// A mount from the same repository must not succeed: 202 and an
		// upload session, not 201.
		m := r.do(http.MethodPost, "/v2/nolies/blobs/uploads/?mount="+url.QueryEscape(b.Digest)+"&from=nolies", nil, nil)
		expectStatus(t, "mount of a deleted blob", m, http.StatusAccepted)
		loc := m.Header.Get("Location")
		if !strings.Contains(loc, "/blobs/uploads/") {
			t.Fatalf("refused mount: Location %q is not an upload session", loc)
		}
		// An anonymous mount must not succeed either.
		am := r.do(http.MethodPost, "/v2/nolies/blobs/uploads/?mount="+url.QueryEscape(b.Digest), nil, nil)
		expectStatus(t, "anonymous mount of a deleted blob", am, http.StatusAccepted)
		expectStatus(t, "cancel the anonymous mount's session", r.del(am.Header.Get("Location")), http.StatusNoContent)
		// Upload through the session the refused mount opened.
		r.uploadChunks(loc, b, 16<<10)
	}
	r.pushManifest("nolies", "v1", img)
	r.pull("nolies", "v1", img)
	r.pull("nolies", img.Digest, img)
	r.checkInvariants(img.Blobs())
}

// Deleting a 60 MB image by tag gives 60 MB of storage back (disk, or the
// bucket's objects) before the DELETE returns, with nothing else run.
func TestE2EDeleteFreesSpace(t *testing.T) {
	r, rng := startSeeded(t, 3)
	const layer = 20 << 20
	img := randomOCIImage(rng, nil, layer, layer, layer)

	r.pushBlob("big", *img.Config)
	r.pushBlob("big", img.Layers[0])
	r.pushBlobChunked("big", img.Layers[1], 8<<20)
	r.pushBlob("big", img.Layers[2])
	r.pushManifest("big", "v1", img)
	r.expectNoUploads()
	r.expectBlobFiles(img.Blobs())

	storedBefore, diskBefore := r.storedSize()
	resp := r.del("/v2/big/manifests/v1")
	expectStatus(t, "DELETE by tag", resp, http.StatusAccepted)
	storedAfter, diskAfter := r.storedSize()
	r.expectStoredGone(img.Blobs())

	if freed := storedBefore - storedAfter; freed < 3*layer {
		t.Fatalf("DELETE freed %d bytes of the blob store, want at least %d (before %d, after %d)", freed, 3*layer, storedBefore, storedAfter)
	}
	if freed := diskBefore - diskAfter; freed < 3*layer {
		t.Fatalf("DELETE freed %d bytes of the storage under the blob store, want at least %d (before %d, after %d)", freed, 3*layer, diskBefore, diskAfter)
	}
	r.expectManifestGone("big", img.Digest)
	r.checkInvariants()
}

// Two tags on one digest: deleting one tag frees nothing and leaves the
// other pullable; deleting the second frees the blobs.
func TestE2ETwoTagsOneDigest(t *testing.T) {
	r, rng := startSeeded(t, 4)
	img := randomOCIImage(rng, nil, 40<<10, 20<<10)

	r.pushImage("two", "t1", img)
	// A second tag on the same manifest (what `crane tag` does: the blobs
	// are there, only the manifest is PUT).
	r.pushManifest("two", "t2", img)
	r.expectTags("two", "t1", "t2")

	filesBefore := r.blobFiles()
	storedBefore, diskBefore := r.storedSize()
	expectStatus(t, "DELETE t1", r.del("/v2/two/manifests/t1"), http.StatusAccepted)
	r.expectManifestGone("two", "t1")
	r.pull("two", "t2", img)
	r.pull("two", img.Digest, img)
	r.expectTags("two", "t2")
	if after := r.blobFiles(); !sameFiles(filesBefore, after) {
		t.Fatalf("deleting one of two tags changed the blob files: before %v, after %v", filesBefore, after)
	}
	if storedAfter, diskAfter := r.storedSize(); storedAfter != storedBefore || diskAfter != diskBefore {
		t.Fatalf("deleting one of two tags changed the data size: stored %d -> %d, disk %d -> %d", storedBefore, storedAfter, diskBefore, diskAfter)
	}
	r.checkInvariants(img.Blobs())

	expectStatus(t, "DELETE t2", r.del("/v2/two/manifests/t2"), http.StatusAccepted)
	r.expectStoredGone(img.Blobs())
	if _, diskAfter := r.storedSize(); diskBefore-diskAfter < blobBytes(img.Blobs()) {
		t.Fatalf("deleting the last tag freed %d bytes of storage, want at least %d", diskBefore-diskAfter, blobBytes(img.Blobs()))
	}
	r.expectManifestGone("two", img.Digest)
	for _, b := range img.Blobs() {
		r.expectBlobGone("two", b)
	}
	r.expectBlobFiles()
	r.checkInvariants()
}

// DELETE by digest removes the manifest and every tag on it.
func TestE2EDeleteByDigestRemovesAllTags(t *testing.T) {
	r, rng := startSeeded(t, 41)
	keep := randomOCIImage(rng, nil, 10<<10)
	img := randomOCIImage(rng, nil, 12<<10, 13<<10)

	r.pushImage("repo", "keep", keep)
	r.pushImage("repo", "a", img)
	r.pushManifest("repo", "b", img)
	r.pushManifest("repo", "c", img)
	r.expectTags("repo", "keep", "a", "b", "c")

	expectStatus(t, "DELETE by digest", r.del("/v2/repo/manifests/"+img.Digest), http.StatusAccepted)
	r.expectStoredGone(img.Blobs())
	r.expectTags("repo", "keep")
	for _, tag := range []string{"a", "b", "c"} {
		resp := r.get("/v2/repo/manifests/"+tag, nil)
		expectError(t, "GET deleted tag "+tag, resp, http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
	r.expectManifestGone("repo", img.Digest)
	// A second DELETE finds nothing.
	expectError(t, "DELETE again", r.del("/v2/repo/manifests/"+img.Digest), http.StatusNotFound, "MANIFEST_UNKNOWN")
	r.pull("repo", "keep", keep)
	r.checkInvariants(keep.Blobs())
}

// HEAD of a manifest gives the same Docker-Content-Digest whatever the
// Accept header, for an OCI image and a Docker schema2 image, and GET serves
// the exact bytes pushed whatever the Accept header.
func TestE2EManifestDigestIndependentOfAccept(t *testing.T) {
	r, rng := startSeeded(t, 42)
	oci := randomOCIImage(rng, nil, 5<<10)
	dock := randomDockerImage(rng, 6<<10)
	r.pushImage("accept", "oci", oci)
	r.pushImage("accept", "docker", dock)

	for _, c := range []struct {
		tag string
		m   manifest
	}{{"oci", oci}, {"docker", dock}} {
		for _, ref := range []string{c.tag, c.m.Digest} {
			plain := r.head("/v2/accept/manifests/"+ref, nil)
			expectStatus(t, "HEAD without Accept", plain, http.StatusOK)
			all := r.head("/v2/accept/manifests/"+ref, hdr("Accept", allManifestTypes))
			expectStatus(t, "HEAD with Accept", all, http.StatusOK)
			other := r.head("/v2/accept/manifests/"+ref, hdr("Accept", mtDockerList))
			expectStatus(t, "HEAD with an Accept that does not match", other, http.StatusOK)
			for name, h := range map[string]response{"no Accept": plain, "all types": all, "list only": other} {
				if got := h.Header.Get("Docker-Content-Digest"); got != c.m.Digest {
					t.Errorf("%s: HEAD %s with %s: Docker-Content-Digest %q, want %q", c.tag, ref, name, got, c.m.Digest)
				}
				if got := h.Header.Get("Content-Type"); got != c.m.MediaType {
					t.Errorf("%s: HEAD %s with %s: Content-Type %q, want %q", c.tag, ref, name, got, c.m.MediaType)
				}
				if got, want := h.Header.Get("Content-Length"), itoa(len(c.m.Body)); got != want {
					t.Errorf("%s: HEAD %s with %s: Content-Length %q, want %s", c.tag, ref, name, got, want)
				}
			}
			for _, accept := range []string{"", mtOCIManifest, mtDockerManifest, allManifestTypes} {
				h := http.Header{}
				if accept != "" {
					h.Set("Accept", accept)
				}
				g := r.get("/v2/accept/manifests/"+ref, h)
				expectStatus(t, "GET manifest", g, http.StatusOK)
				if string(g.Body) != string(c.m.Body) || g.Header.Get("Docker-Content-Digest") != c.m.Digest {
					t.Errorf("%s: GET %s with Accept %q: not the bytes and digest pushed", c.tag, ref, accept)
				}
			}
		}
	}
	r.checkInvariants(oci.Blobs(), dock.Blobs())
}

// blobBytes is the sum of the blobs' sizes.
func blobBytes(bs []blob) int64 {
	var n int64
	for _, b := range bs {
		n += int64(len(b.Data))
	}
	return n
}

func sameFiles(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
