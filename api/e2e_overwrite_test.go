package api_test

import (
	"net/http"
	"testing"
)

// Overwriting a tag frees the old image's manifest and the layers only it
// used before the PUT returns; the shared base layer stays; the new image pulls.
func TestE2EOverwriteFreesOldImage(t *testing.T) {
	r, rng := startSeeded(t, 1)

	base := randomLayer(rng, mtOCILayer, 256<<10)
	a := randomOCIImage(rng, []blob{base}, 100<<10, 50<<10)
	b := randomOCIImage(rng, []blob{base}, 80<<10)
	aOnly := []blob{*a.Config, a.Layers[1], a.Layers[2]}

	r.pushImage("app", "1", a)
	r.pull("app", "1", a)
	r.pull("app", a.Digest, a)
	r.checkInvariants(a.Blobs())

	for _, x := range b.Blobs() {
		r.pushBlob("app", x)
	}
	_, storedBefore := r.storedSize()
	r.pushManifest("app", "1", b)

	// As soon as the PUT has returned: A's own bytes are gone from the
	// storage under the blob store...
	r.expectStoredGone(aOnly)
	if _, storedAfter := r.storedSize(); storedBefore-storedAfter < blobBytes(aOnly) {
		t.Errorf("the overwrite freed %d bytes of storage, want at least %d", storedBefore-storedAfter, blobBytes(aOnly))
	}
	// ...A's manifest is gone...
	resp := r.get("/v2/app/manifests/"+a.Digest, nil)
	expectError(t, "GET old manifest by digest", resp, http.StatusNotFound, "MANIFEST_UNKNOWN")
	// ...the files of A's own layers and config are gone, the base layer's is not.
	files := r.blobFiles()
	for _, x := range aOnly {
		if _, ok := files[x.Digest]; ok {
			t.Errorf("file of %s, used only by the overwritten image, is still on disk", x.Digest)
		}
	}
	if _, ok := files[base.Digest]; !ok {
		t.Errorf("file of the shared base layer %s is gone", base.Digest)
	}
	for _, x := range aOnly {
		r.expectBlobGone("app", x)
	}

	// B pulls, byte for byte, by tag and by digest.
	r.pull("app", "1", b)
	r.pull("app", b.Digest, b)
	r.expectTags("app", "1")
	r.checkInvariants(b.Blobs())
}

// The same, for a Docker schema2 image overwritten by an OCI index: the
// whole old image goes, and the index with its children pulls.
func TestE2EOverwriteDockerImageWithIndex(t *testing.T) {
	r, rng := startSeeded(t, 11)

	old := randomDockerImage(rng, 40<<10, 30<<10)
	r.pushImage("app", "latest", old)
	r.pull("app", "latest", old)

	c1 := randomOCIImage(rng, nil, 20<<10)
	c2 := randomOCIImage(rng, nil, 25<<10)
	r.pushImage("app", c1.Digest, c1)
	r.pushImage("app", c2.Digest, c2)
	idx := index(mtOCIIndex, c1, c2)
	r.pushManifest("app", "latest", idx)

	r.expectManifestGone("app", old.Digest)
	for _, x := range old.Blobs() {
		r.expectBlobGone("app", x)
	}
	r.pull("app", "latest", idx)
	r.expectTags("app", "latest")
	r.checkInvariants(blobsOf(idx))
}

// A manifest that names one blob several times (Docker images repeat the
// empty layer; artifacts use the empty blob as config and layer) holds it
// once, and deleting the manifest frees it.
func TestE2EDuplicateLayers(t *testing.T) {
	r, rng := startSeeded(t, 111)
	empty := randomLayer(rng, mtDockerLayer, 32)
	l := randomLayer(rng, mtDockerLayer, 5<<10)
	img := dockerImage(configBlob(rng, mtDockerConfig), []blob{empty, l, empty, empty})
	art := ociImage(emptyConfig(), []blob{newBlob(mtOCIEmpty, []byte("{}"))}, imageOpts{ArtifactType: "application/vnd.example.empty"})

	r.pushBlob("dup", *img.Config)
	r.pushBlob("dup", empty)
	r.pushBlob("dup", l)
	r.pushManifest("dup", "img", img)
	r.pushBlob("dup", emptyConfig())
	r.pushManifest("dup", "art", art)
	r.pull("dup", "img", img)
	r.pull("dup", "art", art)
	r.checkInvariants(img.Blobs(), art.Blobs())

	expectStatus(t, "DELETE img", r.del("/v2/dup/manifests/img"), http.StatusAccepted)
	r.expectStoredGone([]blob{empty, l, *img.Config})
	r.expectBlobGone("dup", empty)
	r.checkInvariants(art.Blobs())
	expectStatus(t, "DELETE art", r.del("/v2/dup/manifests/art"), http.StatusAccepted)
	r.expectBlobFiles()
	r.checkInvariants()
}

// The base endpoint answers 200 with the API version header.
func TestE2EBase(t *testing.T) {
	r := startRegistry(t, regOptions{})
	for _, p := range []string{"/v2/", "/v2"} {
		resp := r.get(p, nil)
		expectStatus(t, "GET "+p, resp, http.StatusOK)
		if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
			t.Errorf("GET %s: Docker-Distribution-API-Version %q", p, got)
		}
	}
	if cat := r.catalog(); len(cat) != 0 {
		t.Errorf("catalog of an empty registry: %v", cat)
	}
	r.checkInvariants()
}
