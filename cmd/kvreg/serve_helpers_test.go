package main

// Helpers for the tests of kvreg serve as a process: a self-signed CA and a
// server certificate for 127.0.0.1, htpasswd files, a server started with
// any flags whose log is kept, and pushes over any client.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// testPKI is a CA and a server certificate it signed, as PEM files.
type testPKI struct{ *testenv.PKI }

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p, err := testenv.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{p}
}

// client trusts the CA and speaks HTTP/2 when the server does.
func (p *testPKI) client() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool}, ForceAttemptHTTP2: true,
	}}
}

// writeHtpasswd writes users (password: name + "-pw") with bcrypt hashes.
func writeHtpasswd(t *testing.T, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return writeFile(t, "htpasswd", b.String())
}

// logServer is a kvreg serve process whose log is kept.
type logServer struct {
	*server
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{} // closed when the log ends (the process exited)
}

func (s *logServer) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// startServerWith runs kvreg serve with args on a free loopback port.
func startServerWith(t *testing.T, bin string, args ...string) *logServer {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &logServer{server: &server{cmd: cmd}, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		re := regexp.MustCompile(`"?addr"?[=:]"?(127\.0\.0\.1:\d+)`) // text or JSON log
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.addr = <-addrc:
	case <-s.done:
		cmd.Wait()
		t.Fatalf("kvreg serve exited:\n%s", s.logText())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not report its address")
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("kvreg serve log:\n%s", s.logText())
		}
	})
	return s
}

// pushWith pushes a one-layer image as repo:tag through client, as user
// (no credentials when user is ""), and returns the status of the first
// refused request, or of the manifest PUT.
func pushWith(client *http.Client, base, user, repo, tag string, layer []byte) (int, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","image":%q}`, repo+":"+tag))
	do := func(method, url string, body []byte, ct string) (int, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, b := range [][]byte{cfg, layer} {
		st, err := do(http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, digest.FromBytes(b)), b, "application/octet-stream")
		if err != nil || st != http.StatusCreated {
			return st, err
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		refcount.MediaTypeOCIManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
	return do(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, tag), []byte(m), refcount.MediaTypeOCIManifest)
}
