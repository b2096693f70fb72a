package cluster

import (
	"context"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (any of 127.0.0.0/8 reaches haproxy on 127.0.0.1), so that
// the replicas, told by haproxy's X-Forwarded-For, see another client.
func clientFrom(ip string, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// from is the cluster as seen by a client connecting from ip.
func (c *cluster) from(ip string) *cluster {
	cc := *c
	cc.client = clientFrom(ip, 2*time.Minute)
	return &cc
}

// Two clients (127.0.0.2 and 127.0.0.3, through haproxy on 127.0.0.1,
// which forwards their addresses) are told a layer exists; A's manifest
// lands; every image holding the layer is deleted; B's manifest is still
// accepted, the layer pulls byte for byte, and deleting B's image frees
// it: each client's HEAD pinned for that client's push, and B's push took
// over the last hold.
func TestClusterPinsPerClient(t *testing.T) {
	c := newCluster(t)
	a, b := c.from("127.0.0.2"), c.from("127.0.0.3")
	rng := rand.New(rand.NewSource(21))
	const repo = "pins/r"
	layer := randomBlob(rng, mib(1))
	c.pushImage(repo, "old", newImage(randomBlob(rng, 300), layer))

	head := "/v2/" + repo + "/blobs/" + layer.Digest.String()
	a.expect("HEAD of A", a.do(http.MethodHead, head, nil, nil), http.StatusOK)
	b.expect("HEAD of B", b.do(http.MethodHead, head, nil, nil), http.StatusOK)
	imgA := newImage(randomBlob(rng, 301), layer)
	a.pushBlob(repo, imgA.Config)
	a.pushManifest(repo, "a", imgA)

	before := c.bucketBytes()
	c.del("/v2/" + repo + "/manifests/old")
	c.del("/v2/" + repo + "/manifests/a")
	c.expectKept(layer)

	imgB := newImage(randomBlob(rng, 302), layer)
	b.pushBlob(repo, imgB.Config)
	b.pushManifest(repo, "b", imgB)
	b.pull(repo, "b", imgB)

	before = c.bucketBytes()
	c.del("/v2/" + repo + "/manifests/b")
	c.expectFreed(before, imgB.Config, layer)

	// The requests came from where the test says: haproxy logs its
	// clients' addresses.
	log := c.lb.Log()
	for _, ip := range []string{"127.0.0.2:", "127.0.0.3:"} {
		if !strings.Contains(log, ip) {
			t.Fatalf("haproxy logged no request from %s", ip)
		}
	}
	c.fsck()
}
