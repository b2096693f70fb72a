package s3e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) {
	code := s3test.Run(m)
	testenv.Cleanup()
	os.Exit(code)
}

const mtManifest = "application/vnd.oci.image.manifest.v1+json"

// An image pushed to kvreg serve --blob-store s3://... pulls back byte for
// byte, and once its tag is deleted the bucket holds none of its bytes by
// the time the DELETE has answered; fsck --deep, given the same store,
// finds everything clean.
func TestServeWithBlobsOnS3(t *testing.T) {
	r := newS3Registry(t)
	srv, bucket, store, bin, root, s := r.srv, r.bucket, r.store, r.bin, r.root, r.s

	rnd := rand.New(rand.NewSource(1))
	layer := make([]byte, 7<<20+123) // more than one multipart part
	rnd.Read(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	do := func(method, path, ct string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	for _, b := range [][]byte{cfg, layer} {
		if resp, body := do(http.MethodPost, "/v2/team/app/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("blob upload: %d %s", resp.StatusCode, body)
		}
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		mtManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer)))
	if resp, body := do(http.MethodPut, "/v2/team/app/manifests/v1", mtManifest, m); resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest PUT: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodGet, "/v2/team/app/blobs/"+digest.FromBytes(layer).String(), "", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
		t.Fatalf("layer GET: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, layer))
	}
	bs, err := blobs.OpenTarget(root, store)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bs.Has(digest.FromBytes(layer)); err != nil || !ok {
		t.Fatalf("the layer in the bucket: %v, %v", ok, err)
	}
	if resp, body := do(http.MethodDelete, "/v2/team/app/manifests/v1", "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("tag DELETE: %d %s", resp.StatusCode, body)
	}
	left, err := bs.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("blobs left in the bucket after the DELETE answered: %v", left)
	}
	// Under the S3 API too: the server's directory of the bucket holds no
	// object (no data object, no index, no upload state) but the key of
	// upload tokens, made once per bucket.
	var objects []string
	err = filepath.WalkDir(filepath.Join(srv.Dir, bucket), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.ToSlash(p) != filepath.ToSlash(filepath.Join(srv.Dir, bucket, "kvreg", "keys", "uploads")) {
			objects = append(objects, p)
		}
		return err
	})
	if err != nil || len(objects) != 0 {
		t.Fatalf("objects left in the bucket after the DELETE answered: %v %v", objects, err)
	}
	if err := s.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The data directory holds the database and the operator socket, no
	// blob directory.
	if _, err := os.Stat(filepath.Join(root, "blobs")); !os.IsNotExist(err) {
		t.Fatalf("a blob directory under --root with blobs on S3: %v", err)
	}
	out, err := exec.Command(bin, "fsck", "--deep", "--root", root, "--blob-store", store).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck --deep with the same --blob-store: %v\n%s", err, out)
	}
}
