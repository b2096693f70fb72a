package cluster

import (
	"math/rand"
	"net/http"
	"testing"
)

// Deleting a tag frees its image's bytes from the bucket before the DELETE
// answers, whichever replica pushed which part; afterwards no replica says
// any of it exists, and the repository leaves the catalog.
func TestClusterDeleteFrees(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(1))
	img := newImage(randomBlob(rng, 300), randomBlob(rng, mib(3)), randomBlob(rng, 64<<10))
	c.pushImage("team/app", "v1", img)
	c.pull("team/app", "v1", img)

	before := c.bucketBytes()
	c.del("/v2/team/app/manifests/v1")
	c.expectFreed(before, img.blobs()...)
	for _, b := range img.blobs() {
		c.everyReplica("HEAD of a freed blob", http.MethodHead, "/v2/team/app/blobs/"+b.Digest.String(), http.StatusNotFound)
	}
	c.everyReplica("GET of the deleted tag", http.MethodGet, "/v2/team/app/manifests/v1", http.StatusNotFound)
	if cat := c.catalog(); contains(cat, "team/app") {
		t.Fatalf("catalog still lists the emptied repository: %v", cat)
	}
	c.fsck()
}

// Pushing another image under a tag frees what only the old image held,
// and keeps the layer both share.
func TestClusterOverwriteFrees(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(2))
	shared := randomBlob(rng, mib(1))
	old := newImage(randomBlob(rng, 200), shared, randomBlob(rng, mib(2)))
	img := newImage(randomBlob(rng, 201), shared, randomBlob(rng, mib(2)))
	c.pushImage("team/app", "latest", old)

	before := c.bucketBytes()
	for _, b := range img.blobs() {
		c.pushBlob("team/app", b)
	}
	added := c.bucketBytes() - before
	c.pushManifest("team/app", "latest", img)
	// The overwrite answered: the old config and layer are gone.
	c.expectFreed(before+added, old.Config, old.Layers[1])
	c.expectKept(img.blobs()...)
	c.everyReplica("GET of the old image by digest", http.MethodGet, "/v2/team/app/manifests/"+old.Digest.String(), http.StatusNotFound)
	c.pull("team/app", "latest", img)
	c.fsck()
}

// After a DELETE by digest no replica says a layer exists that is gone; a
// push that asks is told "missing", uploads, and the image pulls.
func TestClusterNoLiesAfterDelete(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(3))
	img := newImage(randomBlob(rng, 250), randomBlob(rng, 512<<10), randomBlob(rng, 100<<10))
	c.pushImage("nolies", "v1", img)

	before := c.bucketBytes()
	c.del("/v2/nolies/manifests/" + img.Digest.String())
	c.expectFreed(before, img.blobs()...)
	for _, b := range img.blobs() {
		c.everyReplica("HEAD after the DELETE", http.MethodHead, "/v2/nolies/blobs/"+b.Digest.String(), http.StatusNotFound)
	}
	c.everyReplica("tag of the deleted image", http.MethodGet, "/v2/nolies/manifests/v1", http.StatusNotFound)
	// Pushed again the way a client does (HEAD says missing, upload).
	c.pushImage("nolies", "v1", img)
	c.pull("nolies", "v1", img)
	c.pull("nolies", img.Digest.String(), img)
	c.fsck()
}

// Two tags on one digest: deleting one frees nothing and leaves the other
// pullable; deleting the second frees the image. A DELETE by digest takes
// every tag on it.
func TestClusterTwoTagsOneDigest(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(4))
	img := newImage(randomBlob(rng, 222), randomBlob(rng, 300<<10))
	c.pushImage("two", "t1", img)
	c.pushManifest("two", "t2", img)

	before := c.bucketBytes()
	c.del("/v2/two/manifests/t1")
	if after := c.bucketBytes(); after != before {
		t.Fatalf("deleting one of two tags changed the bucket: %d -> %d bytes", before, after)
	}
	c.expectKept(img.blobs()...)
	c.everyReplica("the deleted tag", http.MethodGet, "/v2/two/manifests/t1", http.StatusNotFound)
	c.pull("two", "t2", img)

	c.del("/v2/two/manifests/t2")
	c.expectFreed(before, img.blobs()...)

	// By digest, with two tags on it.
	c.pushImage("two", "a", img)
	c.pushManifest("two", "b", img)
	before = c.bucketBytes()
	c.del("/v2/two/manifests/" + img.Digest.String())
	c.expectFreed(before, img.blobs()...)
	for _, tag := range []string{"a", "b"} {
		c.everyReplica("tag of an image deleted by digest", http.MethodGet, "/v2/two/manifests/"+tag, http.StatusNotFound)
	}
	c.fsck()
}

// A chunked upload whose PATCHes land on every replica in turn, chunks of
// 1, 4 and 17 MiB (the last crosses S3 parts), completes with its digest
// and pulls; so does one whose PATCHes do not say where they start.
func TestClusterChunkedUpload(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(5))
	layer := randomBlob(rng, mib(1)+mib(4)+mib(17))
	img := newImage(randomBlob(rng, 100), layer)
	c.pushChunked("big", layer, mib(1), mib(4), mib(17))
	c.pushBlob("big", img.Config)
	c.pushManifest("big", "v1", img)
	c.pull("big", "v1", img)

	// Streamed chunks, without Content-Range.
	streamed := randomBlob(rng, mib(6)+7)
	img2 := newImage(randomBlob(rng, 101), streamed)
	c.pushStreamed("big", streamed, mib(1), 5, mib(3))
	c.pushBlob("big", img2.Config)
	c.pushManifest("big", "v2", img2)
	c.pull("big", "v2", img2)
	c.fsck()
}
