package api_test

import (
	"math/rand"
	"net/http"
	"testing"
	"time"
)

const grace = time.Hour

// An uploaded blob that nothing references lives out its lease, then goes:
// its HEAD turns 404 and its file is removed by the sweep.
func TestE2ELeaseUnreferencedBlobExpires(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(7))
	u := randomLayer(rng, mtOCILayer, 10<<10)

	r.pushBlob("lease", u)
	expectStatus(t, "HEAD fresh upload", r.head("/v2/lease/blobs/"+u.Digest, nil), http.StatusOK)
	r.pullBlob("lease", u)
	r.reg.Clock.Advance(grace - time.Minute)
	if n := r.sweep(); n != 0 {
		t.Errorf("sweep before the grace ended processed %d leases", n)
	}
	// GET, not HEAD: a HEAD would pin the blob past the grace.
	r.pullBlob("lease", u)
	r.checkInvariants([]blob{u})

	r.reg.Clock.Advance(2 * time.Minute)
	// Expired: not visible even before a sweep has got to it.
	if h := r.head("/v2/lease/blobs/"+u.Digest, nil); h.Status != http.StatusNotFound {
		t.Errorf("HEAD of a blob whose lease expired (not yet swept): %d, want 404", h.Status)
	}
	if n := r.sweep(); n < 1 {
		t.Errorf("sweep after the grace processed %d leases, want at least 1", n)
	}
	r.expectBlobGone("lease", u)
	if r.hasBlobFile(u) {
		t.Fatalf("file of the expired blob is still on disk")
	}
	if cat := r.catalog(); contains(cat, "lease") {
		t.Errorf("catalog lists a repository that holds nothing: %v", cat)
	}
	r.checkInvariants()
}

// Any write request sweeps expired leases too.
func TestE2ELeaseSweptByWrite(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(71))
	v := randomLayer(rng, mtOCILayer, 10<<10)
	w := randomLayer(rng, mtOCILayer, 11<<10)

	r.pushBlob("lease", v)
	r.reg.Clock.Advance(grace + time.Minute)
	r.pushBlob("other", w) // an ordinary write, in another repository
	if r.hasBlobFile(v) {
		t.Fatalf("a write after the grace did not sweep the expired blob's file")
	}
	r.expectBlobGone("lease", v)
	r.checkInvariants([]blob{w})
}

// A blob that a push in flight has just uploaded is not reclaimed, and
// once a manifest references it the lease no longer matters.
func TestE2ELeasePushInFlight(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(72))
	img := randomOCIImage(rng, nil, 30<<10)

	for _, b := range img.Blobs() {
		r.pushBlob("flight", b)
	}
	r.reg.Clock.Advance(59 * time.Minute)
	r.sweep()
	for _, b := range img.Blobs() {
		if !r.hasBlobFile(b) {
			t.Fatalf("blob %s was reclaimed 59 minutes into a 1h grace", b.Digest)
		}
		r.pullBlob("flight", b)
	}
	r.pushManifest("flight", "v1", img)

	r.reg.Clock.Advance(2 * time.Hour)
	r.sweep()
	r.pull("flight", "v1", img)
	for _, b := range img.Blobs() {
		expectStatus(t, "HEAD referenced blob after the grace", r.head("/v2/flight/blobs/"+b.Digest, nil), http.StatusOK)
	}
	r.checkInvariants(img.Blobs())
}

// A manifest pushed by digest that nothing references is reclaimed after
// the grace, with its layers.
func TestE2ELeaseUnreferencedManifestExpires(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(73))
	img := randomOCIImage(rng, nil, 15<<10, 16<<10)
	keep := randomOCIImage(rng, nil, 3<<10)
	r.pushImage("byd", "keep", keep)

	r.pushImage("byd", img.Digest, img)
	r.reg.Clock.Advance(30 * time.Minute)
	r.sweep()
	r.pull("byd", img.Digest, img)
	r.checkInvariants(blobsOf(keep, img))

	r.reg.Clock.Advance(31 * time.Minute)
	if n := r.sweep(); n < 1 {
		t.Errorf("sweep processed %d leases, want the manifest's", n)
	}
	r.expectManifestGone("byd", img.Digest)
	for _, b := range img.Blobs() {
		r.expectBlobGone("byd", b)
	}
	r.pull("byd", "keep", keep)
	r.checkInvariants(keep.Blobs())
}

// A child pushed by digest and then listed by an index before its lease
// ends is held by the index afterwards.
func TestE2ELeaseChildAdoptedByIndex(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(74))
	c := randomOCIImage(rng, nil, 8<<10)
	r.pushImage("adopt", c.Digest, c)
	r.reg.Clock.Advance(50 * time.Minute)
	idx := index(mtOCIIndex, c)
	r.pushManifest("adopt", "v1", idx)
	r.reg.Clock.Advance(3 * time.Hour)
	r.sweep()
	r.pull("adopt", "v1", idx)
	r.checkInvariants(blobsOf(idx))
}

// An index pushed by digest over children pushed by digest, never tagged,
// goes after the grace with its children and their layers.
func TestE2ELeaseUnreferencedIndexExpires(t *testing.T) {
	r := startRegistry(t, regOptions{UploadGrace: grace, PinWindow: 5 * time.Minute})
	rng := rand.New(rand.NewSource(75))
	c1 := randomOCIImage(rng, nil, 5<<10)
	c2 := randomOCIImage(rng, nil, 6<<10)
	for _, c := range []manifest{c1, c2} {
		r.pushImage("lidx", c.Digest, c)
	}
	idx := index(mtOCIIndex, c1, c2)
	r.reg.Clock.Advance(30 * time.Minute)
	r.pushManifest("lidx", idx.Digest, idx)
	// The children's own leases (pushed 30 minutes earlier) have ended;
	// the index holds them now.
	r.reg.Clock.Advance(45 * time.Minute)
	r.sweep()
	r.pull("lidx", idx.Digest, idx)
	r.checkInvariants(blobsOf(idx))

	r.reg.Clock.Advance(16 * time.Minute)
	r.sweep()
	for _, m := range []manifest{idx, c1, c2} {
		r.expectManifestGone("lidx", m.Digest)
	}
	r.expectBlobFiles()
	r.checkInvariants()
}
