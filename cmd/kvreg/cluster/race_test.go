package cluster

import (
	"math/rand"
	"net/http"
	"testing"
)

// The narrow race across replicas: a push is told by replica A that a
// layer exists (HEAD), the only image holding that layer is deleted
// through replica B, and the push's manifest reaches replica C. The HEAD's
// "exists" must hold on every replica: C accepts the manifest (201) and
// the image pulls.
func TestClusterHeadDeleteManifestAcrossReplicas(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(7))
	layer := randomBlob(rng, 256<<10)
	old := newImage(randomBlob(rng, 120), layer)
	img := newImage(randomBlob(rng, 121), layer)
	c.pushImage("race", "old", old)
	c.pushBlob("race", img.Config)

	a, b, cc := c.replicas[0].URL, c.replicas[1].URL, c.replicas[2].URL
	h := c.do(http.MethodHead, a+"/v2/race/blobs/"+layer.Digest.String(), nil, nil)
	c.expect("HEAD of the layer via replica 0", h, http.StatusOK)
	c.expect("DELETE of the old image via replica 1", c.do(http.MethodDelete, b+"/v2/race/manifests/old", nil, nil), http.StatusAccepted)
	put := c.do(http.MethodPut, cc+"/v2/race/manifests/new", http.Header{"Content-Type": {mtManifest}}, img.Manifest)
	c.expect("manifest via replica 2 after the HEAD via replica 0 said the layer exists", put, http.StatusCreated)
	c.pull("race", "new", img)
	c.fsck()
}
