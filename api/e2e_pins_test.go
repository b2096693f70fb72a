package api_test

import (
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The lie the reference registry tells after GC, and its cure: a client is
// told by HEAD that a layer exists; the only image that used it is deleted
// before the client's manifest arrives; the manifest PUT still succeeds and
// the image pulls, because the HEAD pinned the layer. When the pin window
// has passed without a manifest, the layer goes. With pins in memory and
// with pin rows (Shared).
func TestE2EPinCoversPushAfterDelete(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { pinCoversPushAfterDelete(t, shared) })
	}
}

func pinCoversPushAfterDelete(t *testing.T, shared bool) {
	r := startRegistry(t, regOptions{UploadGrace: time.Hour, PinWindow: 10 * time.Minute, Shared: shared})
	rng := rand.New(rand.NewSource(10))

	base := randomLayer(rng, mtOCILayer, 40<<10)
	a := randomOCIImage(rng, []blob{base}, 10<<10)
	b := randomOCIImage(rng, []blob{base}, 11<<10)
	r.pushImage("pin", "a", a)

	// Client B asks about the base layer and is told it exists.
	expectStatus(t, "HEAD base", r.head("/v2/pin/blobs/"+base.Digest, nil), http.StatusOK)
	// Image A is deleted meanwhile.
	expectStatus(t, "DELETE a", r.del("/v2/pin/manifests/a"), http.StatusAccepted)
	r.expectManifestGone("pin", a.Digest)
	if !r.hasBlobFile(base) {
		t.Fatalf("the layer a client was just told exists was deleted")
	}
	// Client B uploads what it was told is missing and PUTs its manifest.
	r.pushBlob("pin", *b.Config)
	r.pushBlob("pin", b.Layers[1])
	r.pushManifest("pin", "b", b)
	r.pull("pin", "b", b)
	r.checkInvariants(b.Blobs())

	// Long after every window, B still pulls: its manifest holds the layer.
	r.reg.Clock.Advance(3 * time.Hour)
	r.sweep()
	r.pull("pin", "b", b)
	r.checkInvariants(b.Blobs())

	// A HEAD that no manifest follows holds the layer only for the window.
	expectStatus(t, "HEAD base again", r.head("/v2/pin/blobs/"+base.Digest, nil), http.StatusOK)
	expectStatus(t, "DELETE b", r.del("/v2/pin/manifests/b"), http.StatusAccepted)
	if !r.hasBlobFile(base) {
		t.Fatalf("a pinned layer was deleted inside its pin window")
	}
	expectStatus(t, "GET pinned base", r.get("/v2/pin/blobs/"+base.Digest, nil), http.StatusOK)
	r.reg.Clock.Advance(11 * time.Minute)
	r.sweep()
	r.expectBlobGone("pin", base)
	r.checkInvariants()
}

// A blob mounted from another repository stays while either repository
// uses it, and goes when neither does.
func TestE2ECrossRepoMount(t *testing.T) {
	r, rng := startSeeded(t, 12)
	base := randomLayer(rng, mtOCILayer, 30<<10)
	src := randomOCIImage(rng, []blob{base}, 5<<10)
	dst := randomOCIImage(rng, []blob{base}, 6<<10)

	r.pushImage("src", "v1", src)
	// Not visible in dst before the mount.
	if h := r.head("/v2/dst/blobs/"+base.Digest, nil); h.Status != http.StatusNotFound {
		t.Fatalf("HEAD in a repository that never linked the blob: %d, want 404", h.Status)
	}
	m := r.do(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+url.QueryEscape(base.Digest)+"&from=src", nil, nil)
	expectStatus(t, "mount", m, http.StatusCreated)
	if got := m.Header.Get("Docker-Content-Digest"); got != base.Digest {
		t.Errorf("mount: Docker-Content-Digest %q", got)
	}
	r.pushBlob("dst", *dst.Config)
	r.pushBlob("dst", dst.Layers[1])
	r.pushManifest("dst", "v1", dst)
	r.pull("dst", "v1", dst)
	r.checkInvariants(src.Blobs(), dst.Blobs())

	expectStatus(t, "DELETE src", r.del("/v2/src/manifests/v1"), http.StatusAccepted)
	r.expectBlobGone("src", base)
	r.pull("dst", "v1", dst)
	r.checkInvariants(dst.Blobs())

	expectStatus(t, "DELETE dst", r.del("/v2/dst/manifests/v1"), http.StatusAccepted)
	r.expectBlobFiles()
	r.checkInvariants()
}

// DELETE of a blob removes an unreferenced link (and the file, if it was
// the last), and is refused while a manifest uses the blob.
func TestE2EDeleteBlob(t *testing.T) {
	r, rng := startSeeded(t, 13)
	img := randomOCIImage(rng, nil, 5<<10)
	loose := randomLayer(rng, mtOCILayer, 7<<10)
	r.pushImage("db", "v1", img)
	r.pushBlob("db", loose)
	r.pushBlob("db2", loose)

	resp := r.del("/v2/db/blobs/" + img.Layers[0].Digest)
	expectError(t, "DELETE a referenced blob", resp, http.StatusConflict, "DENIED")
	r.pull("db", "v1", img)

	expectStatus(t, "DELETE a loose blob", r.del("/v2/db/blobs/"+loose.Digest), http.StatusAccepted)
	r.expectBlobGone("db", loose)
	r.pullBlob("db2", loose) // still linked in db2
	r.checkInvariants(img.Blobs(), []blob{loose})

	expectStatus(t, "DELETE the last link", r.del("/v2/db2/blobs/"+loose.Digest), http.StatusAccepted)
	r.expectBlobGone("db2", loose)
	expectError(t, "DELETE again", r.del("/v2/db2/blobs/"+loose.Digest), http.StatusNotFound, "BLOB_UNKNOWN")
	if contains(r.catalog(), "db2") {
		t.Errorf("catalog still lists db2, which holds nothing")
	}
	r.checkInvariants(img.Blobs())
}

// The same image in two repositories: deleting it from one leaves the
// other whole, and the files go only with the second.
func TestE2ESameImageTwoRepos(t *testing.T) {
	r, rng := startSeeded(t, 20)
	img := randomOCIImage(rng, nil, 9<<10, 8<<10)
	r.pushImage("one", "v", img)
	r.pushImage("two", "v", img)

	expectStatus(t, "DELETE in one", r.del("/v2/one/manifests/"+img.Digest), http.StatusAccepted)
	r.expectManifestGone("one", img.Digest)
	for _, b := range img.Blobs() {
		r.expectBlobGone("one", b)
	}
	r.pull("two", "v", img)
	r.checkInvariants(img.Blobs())

	expectStatus(t, "DELETE in two", r.del("/v2/two/manifests/v"), http.StatusAccepted)
	r.expectBlobFiles()
	if cat := r.catalog(); len(cat) != 0 {
		t.Errorf("catalog: %v", cat)
	}
	r.checkInvariants()
}
