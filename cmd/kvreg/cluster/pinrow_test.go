package cluster

import (
	"math/rand"
	"net/http"
	"testing"
)

// Two pushes are told a layer exists, on two replicas, while one pin row
// stands for both (the second HEAD writes nothing); the first push's
// manifest lands, every image that holds the layer is deleted, and the
// second push's manifest, on the third replica, is still accepted and
// pulls.
func TestClusterTwoHeadsOnePinRow(t *testing.T) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(11))
	layer := randomBlob(rng, 64<<10)
	old := newImage(randomBlob(rng, 100), layer)
	a := newImage(randomBlob(rng, 101), layer)
	b := newImage(randomBlob(rng, 102), layer)
	c.pushImage("pins", "old", old)
	c.pushBlob("pins", a.Config)
	c.pushBlob("pins", b.Config)
	r0, r1, r2 := c.replicas[0].URL, c.replicas[1].URL, c.replicas[2].URL
	head := "/v2/pins/blobs/" + layer.Digest.String()
	c.expect("HEAD for push A via replica 0", c.do(http.MethodHead, r0+head, nil, nil), http.StatusOK)
	c.expect("HEAD for push B via replica 1", c.do(http.MethodHead, r1+head, nil, nil), http.StatusOK)
	c.expect("manifest A via replica 2", c.do(http.MethodPut, r2+"/v2/pins/manifests/a", http.Header{"Content-Type": {mtManifest}}, a.Manifest), http.StatusCreated)
	c.expect("DELETE old", c.do(http.MethodDelete, r0+"/v2/pins/manifests/"+old.Digest.String(), nil, nil), http.StatusAccepted)
	c.expect("DELETE a", c.do(http.MethodDelete, r0+"/v2/pins/manifests/"+a.Digest.String(), nil, nil), http.StatusAccepted)
	c.expect("manifest B, whose HEAD said exists", c.do(http.MethodPut, r2+"/v2/pins/manifests/b", http.Header{"Content-Type": {mtManifest}}, b.Manifest), http.StatusCreated)
	c.pull("pins", "b", b)
	c.fsck()
}
