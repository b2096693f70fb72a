package e2e

import (
	"regexp"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// TestDockerCluster is docker push and pull through haproxy balancing
// every request round robin over three kvreg serve --replicas sharing one
// PostgreSQL database and one S3 bucket: push, rmi and pull give the same
// image id; an overwrite and a delete, each request to another replica,
// free the bucket's bytes before they answer; a push after a delete
// uploads its layers again; deleting every tag empties the bucket; fsck of
// the shared store is clean. It runs
// before the parallel suites, so that its images do not meet theirs in
// the one docker daemon.
func TestDockerCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	defer step(t, "docker suite through haproxy over three replicas")()
	hap, err := testenv.FindHAProxy()
	if err != nil {
		missing(t, "%v", err)
	}
	srv, bucket := s3test.Bucket(t)
	db := pgtest.NewDatabase(t)
	d := needDocker(t)
	store := testenv.S3Store(bucket, srv.Endpoint, srv.Region)
	cl, err := testenv.StartCluster(testenv.ClusterOptions{Bin: kvregBin, HAProxy: hap, DB: db, Store: store, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := cl.Stop(); err != nil {
			t.Errorf("stopping the replicas: %v", err)
		}
		if t.Failed() {
			t.Logf("%s", cl.Logs())
		}
	}
	t.Cleanup(stop)
	// The clients see one registry, haproxy's address; the bucket is read
	// directly.
	reg := &registry{root: t.TempDir(), store: store, addr: cl.LB.Addr}

	t.Run("PushRmiPull", func(t *testing.T) { testDockerRoundTrip(t, d, reg) })
	t.Run("OverwriteFreesOldLayers", func(t *testing.T) { testDockerOverwrite(t, d, reg) })
	t.Run("NoLayerAlreadyExistsAfterDelete", func(t *testing.T) { testDockerRepushAfterDelete(t, d, reg) })
	t.Run("DeleteReclaims", func(t *testing.T) { testDockerDeleteReclaims(t, d, reg) })

	// Deleting every tag left, each DELETE through haproxy, empties the
	// bucket of blobs.
	before := reg.blobsSize(t)
	for _, repo := range reg.catalog(t) {
		for _, tag := range reg.tags(t, repo) {
			reg.deleteManifest(t, repo, reg.headDigest(t, repo, tag))
		}
	}
	if cat := reg.catalog(t); len(cat) != 0 {
		t.Errorf("catalog after every tag was deleted: %v", cat)
	}
	after := reg.blobsSize(t)
	t.Logf("blob bytes in the bucket %d -> %d after deleting every tag", before, after)
	if before == 0 || after != 0 {
		t.Errorf("blob bytes in the bucket %d -> %d after deleting every tag, want some -> 0", before, after)
	}

	// Every replica answered some of docker's requests.
	perReplica := map[string]int{}
	for _, m := range haproxyServer.FindAllStringSubmatch(cl.LB.Log(), -1) {
		perReplica[m[1]]++
	}
	t.Logf("requests per replica through haproxy: %v", perReplica)
	for i := range cl.Replicas {
		if perReplica[replicaName(i)] == 0 {
			t.Errorf("replica %s answered none of docker's requests: %v", replicaName(i), perReplica)
		}
	}

	stop()
	defer step(t, "kvreg fsck --deep of the shared store")()
	out, err := cl.Fsck(t.TempDir())
	t.Logf("kvreg fsck:\n%s", out)
	if err != nil {
		t.Fatalf("kvreg fsck --deep of the shared database and bucket: %v", err)
	}
}

// haproxyServer finds the backend server of a request in haproxy's log
// (option httplog: "frontend backend/server").
var haproxyServer = regexp.MustCompile(`\breplicas/(r\d+)\b`)

func replicaName(i int) string { return "r" + string(rune('0'+i)) }
