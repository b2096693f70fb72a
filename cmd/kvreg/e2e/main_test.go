package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/opencontainers/go-digest"
)

var (
	// kvregBin is the binary TestMain builds.
	kvregBin string
	// ci: in CI a client that cannot start fails the test instead of
	// skipping it.
	ci = os.Getenv("CI") == "true"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	start := time.Now()
	bin, err := testenv.Kvreg()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	kvregBin = bin
	fmt.Fprintf(os.Stderr, "e2e: built kvreg in %v\n", time.Since(start).Round(time.Millisecond))
	// kvreg and the tests' own look at the bucket take the S3 server's
	// credentials the usual AWS way.
	os.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	// The S3 server and PostgreSQL run for the whole suite: the cluster
	// tests share both among three kvreg processes.
	code := s3test.Around(func() int { return pgtest.Run(m) })
	stopDocker()
	testenv.Cleanup()
	return code
}

// missing skips the test, or fails it in CI, when a client cannot be used.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if ci {
		t.Fatalf("CI=true and a client is not usable: %s", msg)
	}
	t.Skipf("skipping (set CI=true to make this a failure): %s", msg)
}

// needTool returns the path of a client, or skips (fails in CI).
func needTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := testenv.FindTool(name)
	if err != nil {
		missing(t, "%v (install: %s)", err, install)
	}
	return p
}

// step logs how long a step took: defer step(t, "push")().
func step(t testing.TB, name string) func() {
	t.Helper()
	start := time.Now()
	return func() {
		t.Helper()
		t.Logf("step %q took %v", name, time.Since(start).Round(time.Millisecond))
	}
}

// cmdResult is what a client printed.
type cmdResult struct {
	stdout, stderr string
	err            error
}

func (r cmdResult) combined() string { return r.stdout + r.stderr }

// runCmd runs a command with a time limit and extra environment, logging
// the command line and how long it took.
func runCmd(t testing.TB, timeout time.Duration, env []string, bin string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(testenv.CleanEnv(), env...)
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (time limit %v)", ctx.Err(), timeout)
	}
	t.Logf("$ %s %s  (%v)", filepath.Base(bin), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return cmdResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// mustRun is runCmd that fails the test on error, showing the output.
func mustRun(t testing.TB, timeout time.Duration, env []string, bin string, args ...string) cmdResult {
	t.Helper()
	r := runCmd(t, timeout, env, bin, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), r.err, testenv.Tail(r.stdout, 4000), testenv.Tail(r.stderr, 4000))
	}
	return r
}

// freeBytes is the space available to unprivileged writers at path.
func freeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// registry is a kvreg serve process on a loopback port, which keeps its
// address and data directory across restarts.
type registry struct {
	root    string // data directory
	store   string // --blob-store: an s3:// URL, or "" for the data directory
	addr    string // 127.0.0.1:port
	srv     *testenv.Server
	pastLog string   // of the processes before srv
	args    []string // more flags of kvreg serve
}

// startRegistry starts kvreg on a free loopback port with a fresh data
// directory; it is stopped when the test ends.
func startRegistry(t testing.TB) *registry { t.Helper(); return startRegistryOn(t, "") }

// startRegistryOn is startRegistry with its blob bytes in store (an s3://
// URL), or in the data directory when store is empty.
func startRegistryOn(t testing.TB, store string) *registry {
	t.Helper()
	return startRegistryWith(t, store)
}

// startRegistryWith is startRegistryOn with more flags of kvreg serve.
func startRegistryWith(t testing.TB, store string, args ...string) *registry {
	t.Helper()
	r := &registry{root: filepath.Join(t.TempDir(), "data"), store: store, args: args}
	if err := r.start(t); err != nil {
		t.Fatal(err)
	}
	r.addr = r.srv.Addr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kvreg log (tail):\n%s", testenv.Tail(r.log(), 6000))
		}
		r.kill()
	})
	return r
}

// start runs kvreg serve (on r.addr once it has one) until /readyz answers.
func (r *registry) start(t testing.TB) error {
	t.Helper()
	start := time.Now()
	srv, err := testenv.Start(kvregBin, testenv.Options{Root: r.root, Addr: r.addr, Args: append(r.storeArgs(), r.args...)})
	if err != nil {
		return err
	}
	r.srv = srv
	t.Logf("kvreg serving on %s, root %s (up in %v)", srv.Addr, r.root, time.Since(start).Round(time.Millisecond))
	return nil
}

// stop ends the server with SIGTERM and requires a clean exit.
func (r *registry) stop(t testing.TB) {
	t.Helper()
	if r.srv == nil {
		return
	}
	if err := r.srv.Stop(45 * time.Second); err != nil {
		t.Errorf("kvreg serve on SIGTERM: %v", err)
	}
	r.pastLog += r.srv.Log()
	r.srv = nil
}

func (r *registry) kill() {
	if r.srv == nil {
		return
	}
	r.srv.Kill()
	r.pastLog += r.srv.Log()
	r.srv = nil
}

// restart starts the server again on the same address and data directory.
func (r *registry) restart(t testing.TB) {
	t.Helper()
	r.stop(t)
	if err := r.start(t); err != nil {
		t.Fatalf("restart kvreg: %v\nlog:\n%s", err, testenv.Tail(r.log(), 4000))
	}
}

// fsck stops the server and requires `kvreg fsck` to find the store clean.
// The server stays stopped; call restart to go on.
func (r *registry) fsck(t testing.TB, deep bool) {
	t.Helper()
	defer step(t, "kvreg fsck")()
	r.stop(t)
	args := append([]string{"fsck", "--root", r.root}, r.storeArgs()...)
	if deep {
		args = append(args, "--deep")
	}
	res := runCmd(t, 5*time.Minute, nil, kvregBin, args...)
	out := res.combined()
	t.Logf("kvreg fsck:\n%s", strings.TrimSpace(out))
	if res.err != nil {
		t.Fatalf("kvreg fsck --root %s: %v (want exit 0, store clean):\n%s", r.root, res.err, out)
	}
	if !strings.Contains(out, "clean") {
		t.Fatalf("kvreg fsck exited 0 but did not say clean:\n%s", out)
	}
}

// storeArgs are the flags that give kvreg the registry's blob store.
func (r *registry) storeArgs() []string {
	if r.store == "" {
		return nil
	}
	return []string{"--blob-store", r.store}
}

func (r *registry) log() string {
	if r.srv == nil {
		return r.pastLog
	}
	return r.pastLog + r.srv.Log()
}

// host is what clients put before a repository name.
func (r *registry) host() string { return r.addr }

// ref is a full image reference in this registry.
func (r *registry) ref(repoAndRef string) string { return r.addr + "/" + repoAndRef }

func (r *registry) url(path string) string { return "http://" + r.addr + path }

// blobStore opens the blob store of the registry's data directory, to look
// at what it stores.
func (r *registry) blobStore(t testing.TB) *blobs.Store {
	t.Helper()
	bs, err := blobs.OpenTarget(r.root, r.store)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	return bs
}

// blobSize is the size of a blob's stored bytes, or -1 if none are stored.
func (r *registry) blobSize(t testing.TB, d string) int64 {
	t.Helper()
	n, err := r.blobStore(t).Stat(digest.Digest(d))
	if errors.Is(err, blobs.ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatalf("stat blob %s: %v", d, err)
	}
	return n
}

// hasBlobFile reports whether a blob's bytes are stored.
func (r *registry) hasBlobFile(t testing.TB, d string) bool { return r.blobSize(t, d) >= 0 }

// blobsSize is the sum of the sizes of the blobs stored.
func (r *registry) blobsSize(t testing.TB) int64 {
	t.Helper()
	var n int64
	err := r.blobStore(t).Walk(func(_ digest.Digest, _ string, size int64) error {
		n += size
		return nil
	})
	if err != nil {
		t.Fatalf("size of blobs: %v", err)
	}
	return n
}

var httpClient = &http.Client{Timeout: 2 * time.Minute}

// do sends one request to the registry and returns the status, headers and
// body.
func (r *registry) do(t testing.TB, method, path string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	t.Logf("%s %s -> %d", method, path, resp.StatusCode)
	return resp.StatusCode, resp.Header, body
}

// manifestAccept lists every manifest type a client may ask for.
var manifestAccept = strings.Join([]string{
	mtDockerManifest, mtDockerList, mtOCIManifest, mtOCIIndex,
}, ", ")

// headDigest resolves a tag with a HEAD, as an operator would before a
// DELETE, and returns the Docker-Content-Digest.
func (r *registry) headDigest(t testing.TB, repo, ref string) string {
	t.Helper()
	st, h, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Accept": manifestAccept})
	if st != http.StatusOK {
		t.Fatalf("HEAD %s:%s: status %d, want 200", repo, ref, st)
	}
	d := h.Get("Docker-Content-Digest")
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("HEAD %s:%s: Docker-Content-Digest %q", repo, ref, d)
	}
	return d
}

// manifestStatus is the status of a HEAD of a manifest.
func (r *registry) manifestStatus(t testing.TB, repo, ref string) int {
	t.Helper()
	st, _, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Accept": manifestAccept})
	return st
}

// getManifest fetches and parses a manifest.
func (r *registry) getManifest(t testing.TB, repo, ref string) (manifest, string) {
	t.Helper()
	st, h, body := r.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Accept": manifestAccept})
	if st != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: status %d: %s", repo, ref, st, body)
	}
	m := parseManifest(t, body)
	d := h.Get("Docker-Content-Digest")
	if want := sha256Digest(body); d != want {
		t.Fatalf("GET manifest %s:%s: Docker-Content-Digest %s, body digest %s", repo, ref, d, want)
	}
	return m, d
}

// deleteManifest sends DELETE /v2/<repo>/manifests/<ref> and requires 202.
func (r *registry) deleteManifest(t testing.TB, repo, ref string) {
	t.Helper()
	st, _, body := r.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/"+ref, nil)
	if st != http.StatusAccepted {
		t.Fatalf("DELETE %s manifest %s: status %d, want 202: %s", repo, ref, st, body)
	}
}

// catalog lists the repositories.
func (r *registry) catalog(t testing.TB) []string {
	t.Helper()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	st, _, body := r.do(t, http.MethodGet, "/v2/_catalog", nil)
	if st != http.StatusOK {
		t.Fatalf("GET /v2/_catalog: %d: %s", st, body)
	}
	mustJSON(t, body, &c)
	return c.Repositories
}

// tags lists a repository's tags; a repository that is gone has none.
func (r *registry) tags(t testing.TB, repo string) []string {
	t.Helper()
	var c struct {
		Tags []string `json:"tags"`
	}
	st, _, body := r.do(t, http.MethodGet, "/v2/"+repo+"/tags/list", nil)
	if st == http.StatusNotFound {
		return nil
	}
	if st != http.StatusOK {
		t.Fatalf("GET tags of %s: %d: %s", repo, st, body)
	}
	mustJSON(t, body, &c)
	return c.Tags
}
