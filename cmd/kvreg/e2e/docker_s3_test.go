package e2e

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// TestDockerOnS3 is the docker suite's stories with kvreg's blob bytes in
// an S3 bucket: push, rmi and pull give the same image; an overwrite and a
// delete free the bytes in the bucket before they answer; a push after a
// delete uploads its layers again. It runs before the parallel suites, so
// that its images do not meet theirs in the one docker daemon.
func TestDockerOnS3(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	defer step(t, "docker suite on S3")()
	srv, bucket := s3test.Bucket(t)
	d := needDocker(t)
	reg := startRegistryOn(t, fmt.Sprintf("s3://%s/kvreg?endpoint=%s&region=%s&path-style=true", bucket, url.QueryEscape(srv.Endpoint), srv.Region))

	t.Run("PushRmiPull", func(t *testing.T) { testDockerRoundTrip(t, d, reg) })
	t.Run("OverwriteFreesOldLayers", func(t *testing.T) { testDockerOverwrite(t, d, reg) })
	t.Run("NoLayerAlreadyExistsAfterDelete", func(t *testing.T) { testDockerRepushAfterDelete(t, d, reg) })
	t.Run("DeleteReclaims", func(t *testing.T) { testDockerDeleteReclaims(t, d, reg) })
	t.Run("BigLayer", func(t *testing.T) { testDockerBigLayer(t, d, reg) })

	reg.fsck(t, true)
}
