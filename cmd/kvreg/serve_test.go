package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// kvreg serve over TLS, HTTP/2, with htpasswd users and access rules from
// a config file: the challenge, pushes by who may, refusals for who may
// not, and the log and metrics of it all.
func TestServeTLSWithUsersAndRules(t *testing.T) {
	bin := buildKvreg(t)
	pki := newTestPKI(t)
	htpasswd := writeHtpasswd(t, "alice", "bob")
	conf := writeFile(t, "kvreg.yaml", fmt.Sprintf(`
htpasswd: %s
auth-mode: basic
tls-cert: %s
tls-key: %s
log-format: json
access:
  - repos: ["*"]
    users: [alice]
    actions: [pull, push, delete]
  - repos: ["team/*"]
    users: [bob]
    actions: [pull]
`, htpasswd, pki.CertFile, pki.KeyFile))
	root := t.TempDir()
	srv := serveWith(t, bin, testenv.Options{Root: root, Args: []string{"--config", conf}, CA: pki.Pool})
	base := srv.URL
	client := pki.client()

	// Without the CA the handshake fails: the certificate is what it claims.
	if _, err := http.Get(base + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET without trusting the CA: %v", err)
	}
	resp, err := client.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="kvreg"` {
		t.Fatalf("anonymous GET /v2/: %s %s, WWW-Authenticate %q", resp.Proto, resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/", nil)
	req.SetBasicAuth("alice", "alice-pw")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("alice GET /v2/: %v %v", resp, err)
	}
	resp.Body.Close()

	layer := make([]byte, 64<<10)
	rand.New(rand.NewSource(3)).Read(layer)
	if st, err := pushWith(client, base, "alice", "team/app", "v1", layer); err != nil || st != http.StatusCreated {
		t.Fatalf("alice pushes: %d %v", st, err)
	}
	if !blobStored(t, root, digest.FromBytes(layer)) {
		t.Fatal("alice's layer is not stored")
	}
	other := append([]byte("other"), layer...)
	for _, c := range []struct {
		user string
		want int
	}{{"bob", http.StatusForbidden}, {"", http.StatusUnauthorized}} {
		if st, err := pushWith(client, base, c.user, "team/app", "v2", other); err != nil || st != c.want {
			t.Errorf("push as %q: %d %v, want %d", c.user, st, err, c.want)
		}
	}
	// Nothing of the refused pushes was written.
	if blobStored(t, root, digest.FromBytes(other)) {
		t.Error("refused push left its blob")
	}
	if ids := uploadDirs(t, root); len(ids) != 0 {
		t.Errorf("refused push left uploads: %v", ids)
	}
	// bob pulls.
	req, _ = http.NewRequest(http.MethodGet, base+"/v2/team/app/blobs/"+digest.FromBytes(layer).String(), nil)
	req.SetBasicAuth("bob", "bob-pw")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(got) != len(layer) {
		t.Fatalf("bob pulls the layer: %s, %d bytes", resp.Status, len(got))
	}
	// Metrics over the same listener.
	resp, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kvreg_http_requests_total{method="PUT",route="manifest",status="201"} 1`,
		`kvreg_http_requests_total{method="POST",route="upload_start",status="403"} 1`,
		`kvreg_http_requests_total{method="POST",route="upload_start",status="401"} 1`,
		`kvreg_store_manifests 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stopServer(t, srv)
	<-srv.Done()
	log := srv.Log()
	for _, want := range []string{`"msg":"request"`, `"user":"alice"`, `"proto":"HTTP/2.0"`, `"status":403`, `"tls":true`, `"auth":true`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(log, "alice-pw") || strings.Contains(log, "Authorization") {
		t.Error("the log shows credentials")
	}
}

// Bad settings stop kvreg serve at once with exit code 2 and a message
// that says what is wrong.
func TestServeStartupErrors(t *testing.T) {
	bin := buildKvreg(t)
	pki := newTestPKI(t)
	other := newTestPKI(t)
	garbage := writeFile(t, "garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
	md5 := writeFile(t, "htpasswd-md5", "alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n")
	good := writeHtpasswd(t, "alice")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing certificate", []string{"--tls-cert", "/nonexistent/tls.crt", "--tls-key", pki.KeyFile}, "/nonexistent/tls.crt"},
		{"garbage certificate", []string{"--tls-cert", garbage, "--tls-key", pki.KeyFile}, "garbage.pem"},
		{"key of another certificate", []string{"--tls-cert", pki.CertFile, "--tls-key", other.KeyFile}, "private key does not match"},
		{"certificate without key", []string{"--tls-cert", pki.CertFile}, "go together"},
		{"non-bcrypt htpasswd", []string{"--htpasswd", md5}, "line 1: user \"alice\": not a bcrypt hash"},
		{"missing htpasswd", []string{"--htpasswd", "/nonexistent/htpasswd"}, "/nonexistent/htpasswd"},
		{"rule for an unknown user", []string{"--htpasswd", good, "--config", writeFile(t, "c.yaml", "access:\n  - repos: [\"*\"]\n    users: [alcie]\n    actions: [pull]\n")}, `"alcie" is not in the htpasswd file`},
		{"unknown setting", []string{"--config", writeFile(t, "c.yaml", "max-blob-size: 1\n")}, `unknown setting "max-blob-size"`},
		{"address in use", []string{"--addr", busy.Addr().String()}, busy.Addr().String()},
		{"token flag without htpasswd", []string{"--token-ttl", "1m"}, "--token-ttl needs --htpasswd"},
		{"token key not a key", []string{"--htpasswd", good, "--token-key", garbage}, "--token-key"},
		{"token key is a certificate", []string{"--htpasswd", good, "--token-key", pki.CertFile}, "is not a private key"},
		{"outside issuer file missing", []string{"--htpasswd", good, "--token-issuer", "corp=/nonexistent/jwks.json"}, "--token-issuer corp"},
		{"outside issuer file not keys", []string{"--htpasswd", good, "--token-issuer", "corp=" + good}, "--token-issuer corp"},
	} {
		root := t.TempDir()
		args := append([]string{"serve", "--root", root}, c.args...)
		if c.name != "address in use" {
			args = append(args, "--addr", "127.0.0.1:0")
		}
		_, errOut, code := run(t, bin, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q:\n%s", c.name, code, c.want, errOut)
		}
	}
}

// SIGTERM while uploads are in flight: an upload that finishes within the
// deadline is kept, one that stalls is cut at the deadline, the process
// exits 0 in time, and fsck finds the store clean.
func TestSIGTERMDuringUpload(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	const deadline = 2 * time.Second
	srv := startServer(t, bin, root, "--shutdown-timeout", deadline.String())
	base := "http://" + srv.Addr

	// A: a chunked upload whose body stops.
	resp, err := http.Post(base+"/v2/sig/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	stalledID := filepath.Base(loc)
	apr, apw := io.Pipe()
	defer apw.Close()
	areq, _ := http.NewRequest(http.MethodPatch, base+loc, apr)
	aerr := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(areq)
		if err == nil {
			resp.Body.Close()
		}
		aerr <- err
	}()
	go apw.Write([]byte("never finished"))

	// B: a monolithic upload, half sent.
	blob := make([]byte, 256<<10)
	rand.New(rand.NewSource(4)).Read(blob)
	d := digest.FromBytes(blob)
	bpr, bpw := io.Pipe()
	breq, _ := http.NewRequest(http.MethodPost, base+"/v2/sig/app/blobs/uploads/?digest="+d.String(), bpr)
	breq.ContentLength = int64(len(blob))
	bstatus := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(breq)
		if err != nil {
			bstatus <- -1
			return
		}
		resp.Body.Close()
		bstatus <- resp.StatusCode
	}()
	go bpw.Write(blob[:len(blob)/2])

	// Both are in their handlers once their bytes reach the upload files.
	waitUntil(t, 10*time.Second, "both uploads under way", func() bool {
		drv := openBlobs(t, root).Driver()
		ids, _ := drv.Uploads()
		n := 0
		for _, id := range ids {
			if info, err := drv.Upload(id); err == nil && info.Size > 0 {
				n++
			}
		}
		return n == 2
	})

	exited := make(chan error, 1)
	start := time.Now()
	srv.Signal(syscall.SIGTERM)
	go func() { exited <- srv.Wait() }()
	waitUntil(t, 5*time.Second, "the server to begin shutting down", func() bool {
		return strings.Contains(srv.Log(), "shutting down")
	})
	// The upload in flight may finish.
	bpw.Write(blob[len(blob)/2:])
	bpw.Close()
	if st := <-bstatus; st != http.StatusCreated {
		t.Fatalf("upload finished during shutdown: %d, want 201", st)
	}
	select {
	case err := <-exited:
		took := time.Since(start)
		if err != nil {
			t.Fatalf("kvreg serve exited with %v, want 0", err)
		}
		if took < deadline-100*time.Millisecond || took > deadline+3*time.Second {
			t.Errorf("exited %v after SIGTERM; shutdown timeout %v", took, deadline)
		}
		t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	case <-time.After(deadline + 10*time.Second):
		srv.Kill()
		t.Fatal("kvreg serve did not exit after SIGTERM")
	}
	<-srv.Done()
	apw.CloseWithError(errors.New("test over"))
	select {
	case err := <-aerr:
		t.Logf("the stalled upload ended with %v", err)
	case <-time.After(10 * time.Second):
		t.Error("the stalled upload's client never returned")
	}
	if !strings.Contains(srv.Log(), "closing their connections") {
		t.Errorf("the log does not say the stalled request was cut:\n%s", srv.Log())
	}

	out, errOut, code := run(t, bin, "fsck", "--root", root, "--deep")
	if code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("fsck after SIGTERM: exit %d\n%s%s", code, out, errOut)
	}
	if !blobStored(t, root, d) {
		t.Error("the upload that finished during shutdown is gone")
	}
	// The stalled session kept nothing of its cut chunk and can go on after a restart.
	srv2 := startServer(t, bin, root)
	resp, err = http.Get("http://" + srv2.Addr + "/v2/sig/app/blobs/uploads/" + stalledID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-0" {
		t.Errorf("stalled session after restart: %s, Range %q", resp.Status, resp.Header.Get("Range"))
	}
}

// waitUntil polls cond (the state of another process) for at most limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond) // another process's progress, not a clock under test
	}
}
