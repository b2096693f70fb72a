package s3e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// craneInstallHint is the crane the tests are written against.
const craneInstallHint = "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1"

// With --blob-redirect a blob GET is a 307 to a presigned URL of the
// bucket, with no bytes from kvreg: following it gives the exact bytes,
// and a Range request the exact slice. HEAD and manifests are answered by
// kvreg; a blob that is gone is 404 BLOB_UNKNOWN, never a redirect; crane
// pulls through the redirects byte for byte.
func TestBlobRedirect(t *testing.T) {
	reg := newS3Registry(t, "--blob-redirect", "--blob-redirect-ttl", "2m")
	srv, s := reg.srv, reg.s
	defer func() {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Errorf("stop: %v\n%s", err, testenv.Tail(s.Log(), 4000))
		}
	}()
	s3URL, _ := url.Parse(srv.Endpoint)

	rnd := rand.New(rand.NewSource(2))
	layer := make([]byte, 6<<20+321) // more than one multipart part
	rnd.Read(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	ld, cd := digest.FromBytes(layer), digest.FromBytes(cfg)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(c *http.Client, method, u, ct string, body []byte, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
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
		if resp, body := do(http.DefaultClient, http.MethodPost, s.URL+"/v2/team/app/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("blob upload: %d %s", resp.StatusCode, body)
		}
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		mtManifest, cd, len(cfg), ld, len(layer)))
	if resp, body := do(http.DefaultClient, http.MethodPut, s.URL+"/v2/team/app/manifests/v1", mtManifest, m); resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest PUT: %d %s", resp.StatusCode, body)
	}
	blobURL := s.URL + "/v2/team/app/blobs/" + ld.String()

	// The redirect itself: to the bucket's endpoint, no body.
	resp, body := do(noFollow, http.MethodGet, blobURL, "", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusTemporaryRedirect || loc == nil || loc.Host != s3URL.Host || len(body) != 0 || resp.ContentLength != 0 {
		t.Fatalf("blob GET: %d, Location %q, %d body bytes (Content-Length %d); want 307 to %s, no body", resp.StatusCode, resp.Header.Get("Location"), len(body), resp.ContentLength, s3URL.Host)
	}
	if !strings.HasPrefix(loc.Host, "127.0.0.1:") || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Fatalf("redirect: Location host %q, Docker-Content-Digest %q", loc.Host, resp.Header.Get("Docker-Content-Digest"))
	}
	if q := loc.Query(); q.Get("X-Amz-Expires") != "120" {
		t.Fatalf("presigned URL's lifetime: %q, want 120 (--blob-redirect-ttl 2m)", q.Get("X-Amz-Expires"))
	}
	// Following it: the exact bytes, from the bucket.
	resp, body = do(http.DefaultClient, http.MethodGet, loc.String(), "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET of the Location: %d %q, %d bytes of %d, equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(layer), bytes.Equal(body, layer))
	}
	// A Range GET to kvreg, followed by net/http with its headers, is the
	// exact slice, answered by the bucket.
	from, to := 5<<20-10, 5<<20+4095
	resp, body = do(http.DefaultClient, http.MethodGet, blobURL, "", nil, "Range", fmt.Sprintf("bytes=%d-%d", from, to))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, layer[from:to+1]) {
		t.Fatalf("Range GET through the redirect: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, layer[from:to+1]))
	}
	// HEAD: kvreg answers from its records, no redirect.
	resp, body = do(noFollow, http.MethodHead, blobURL, "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || resp.ContentLength != int64(len(layer)) || len(body) != 0 {
		t.Fatalf("HEAD: %d, Location %q, Content-Length %d", resp.StatusCode, resp.Header.Get("Location"), resp.ContentLength)
	}
	// Manifests live in the database: never redirected.
	resp, body = do(noFollow, http.MethodGet, s.URL+"/v2/team/app/manifests/v1", "", nil, "Accept", mtManifest)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, m) {
		t.Fatalf("manifest GET: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A blob the repository does not link is unknown there, not redirected.
	resp, body = do(noFollow, http.MethodGet, s.URL+"/v2/other/app/blobs/"+ld.String(), "", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || !bytes.Contains(body, []byte("BLOB_UNKNOWN")) {
		t.Fatalf("GET from a repository without the blob: %d, Location %q, %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	// A deleted blob is 404 BLOB_UNKNOWN from kvreg, no redirect; and
	// the URL given out before the delete finds nothing either, since the
	// bucket holds its bytes no more. (Not the layer: the HEADs above pin
	// it for --pin-window.)
	gone := []byte("a blob that is deleted")
	gd := digest.FromBytes(gone)
	if resp, body := do(http.DefaultClient, http.MethodPost, s.URL+"/v2/team/app/blobs/uploads/?digest="+gd.String(), "application/octet-stream", gone); resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %d %s", resp.StatusCode, body)
	}
	goneURL := s.URL + "/v2/team/app/blobs/" + gd.String()
	resp, _ = do(noFollow, http.MethodGet, goneURL, "", nil)
	oldLoc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || oldLoc == "" {
		t.Fatalf("GET of a blob before its delete: %d, Location %q", resp.StatusCode, oldLoc)
	}
	if resp, body := do(http.DefaultClient, http.MethodDelete, goneURL, "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("blob DELETE: %d %s", resp.StatusCode, body)
	}
	resp, body = do(noFollow, http.MethodGet, goneURL, "", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
		t.Fatalf("GET of a deleted blob: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var e struct{ Errors []struct{ Code string } }
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "BLOB_UNKNOWN" {
		t.Fatalf("GET of a deleted blob: %s (%v)", body, err)
	}
	if resp, _ := do(http.DefaultClient, http.MethodGet, oldLoc, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of a Location given before the delete: %d", resp.StatusCode)
	}

	// A real client pulls through the redirects.
	before := redirects(t, s.URL)
	crane := newCraneCLI(t)
	ref := s.Addr + "/team/app"
	if got := crane.run(t, "blob", ref+"@"+ld.String()); !bytes.Equal(got, layer) {
		t.Fatalf("crane blob: %d bytes of %d, equal %v", len(got), len(layer), bytes.Equal(got, layer))
	}
	layout := filepath.Join(t.TempDir(), "layout")
	crane.run(t, "pull", "--format", "oci", ref+":v1", layout)
	for d, want := range map[digest.Digest][]byte{ld: layer, cd: cfg} {
		got, err := os.ReadFile(filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded()))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("crane pull: blob %s: %d bytes of %d, %v", d, len(got), len(want), err)
		}
	}
	// crane blob fetched the layer, crane pull the config and the layer:
	// at least three more redirects, counted by status on the blob route.
	if after := redirects(t, s.URL); after < before+3 {
		t.Fatalf("blob redirects counted before crane %v, after %v", before, after)
	}
}

var redirectSeries = regexp.MustCompile(`(?m)^kvreg_http_requests_total\{method="GET",route="blob",status="307"\} (\S+)$`)

// redirects reads the count of blob GETs answered with 307 from /metrics.
func redirects(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mm := redirectSeries.FindSubmatch(b)
	if mm == nil {
		return 0
	}
	n, err := strconv.ParseFloat(string(mm[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With authentication on, the redirect comes only after the credentials
// are checked. net/http follows it with its Authorization header (the same
// host name at another port), which the presigned query outranks here; a
// client that logged in (crane) pulls through it too.
func TestBlobRedirectWithAuth(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newS3Registry(t, "--blob-redirect", "--htpasswd", htpasswd).s
	b := []byte("bytes behind a login")
	d := digest.FromBytes(b)
	req := func(method, u string, body []byte, user, pw string) *http.Request {
		r, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			r.SetBasicAuth(user, pw)
		}
		return r
	}
	resp, err := http.DefaultClient.Do(req(http.MethodPost, s.URL+"/v2/team/app/blobs/uploads/?digest="+d.String(), b, "alice", "alice-pw"))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %v %v", resp, err)
	}
	resp.Body.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct{ user, pw string }{{"", ""}, {"alice", "wrong"}} {
		resp, err := noFollow.Do(req(http.MethodGet, s.URL+"/v2/team/app/blobs/"+d.String(), nil, c.user, c.pw))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("GET as %q/%q: %d, Location %q", c.user, c.pw, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, err = http.DefaultClient.Do(req(http.MethodGet, s.URL+"/v2/team/app/blobs/"+d.String(), nil, "alice", "alice-pw"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) || resp.Request.URL.Host == s.Addr {
		t.Fatalf("GET as alice, following the redirect to %s: %d %q", resp.Request.URL.Host, resp.StatusCode, got)
	}
	crane := newCraneCLI(t)
	crane.run(t, "auth", "login", s.Addr, "-u", "alice", "-p", "alice-pw")
	if out := crane.run(t, "blob", s.Addr+"/team/app@"+d.String()); !bytes.Equal(out, b) {
		t.Fatalf("crane blob: %q", out)
	}
}

// craneCLI runs crane with a configuration of its own, or skips the test
// without it (fails it with CI=true).
type craneCLI struct {
	bin string
	env []string
}

func newCraneCLI(t *testing.T) *craneCLI {
	t.Helper()
	bin, err := testenv.FindTool("crane")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and crane is missing: %v (install: %s)", err, craneInstallHint)
		}
		t.Skipf("skipping (set CI=true to make this a failure): %v (install: %s)", err, craneInstallHint)
	}
	home := t.TempDir()
	return &craneCLI{bin: bin, env: append(testenv.CleanEnv(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, "docker"))}
}

// run runs crane over plain HTTP and returns its standard output.
func (c *craneCLI) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(c.bin, append(args, "--insecure")...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
