package main

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// A cache killed (SIGKILL) in the middle of a fill: the layer it was
// storing half-way is not stored, nothing references it, and after the
// restart fsck is clean and the same pull completes with the upstream's
// bytes.
func TestCacheKill9MidFill(t *testing.T) {
	bin := buildKvreg(t)
	up := startServer(t, bin, t.TempDir())
	layer := make([]byte, 4<<20)
	rand.New(rand.NewSource(9)).Read(layer)
	if st, err := pushWith(http.DefaultClient, up.URL, "", "library/app", "v1", layer); err != nil || st != http.StatusCreated {
		t.Fatalf("push upstream: %d %v", st, err)
	}
	layerPath := "/blobs/" + digest.FromBytes(layer).String()

	// In front of the upstream: the first GET of the layer sends its first
	// MiB, says so, and holds the rest until the test ends.
	target, _ := url.Parse(up.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	midway, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held := false
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, layerPath) {
			once.Do(func() { held = true })
		}
		if !held {
			proxy.ServeHTTP(w, r)
			return
		}
		resp, err := http.Get(up.URL + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
		w.WriteHeader(resp.StatusCode)
		io.CopyN(w, resp.Body, 1<<20)
		w.(http.Flusher).Flush()
		close(midway)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer front.Close()
	defer close(release)

	root := t.TempDir()
	args := []string{"--mirror", "hub=" + front.URL, "--mirror-default", "hub"}
	cache, err := testenv.Start(bin, testenv.Options{Root: root, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pulled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cache.URL+"/v2/library/app/manifests/v1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			pulled <- 0
			return
		}
		resp.Body.Close()
		pulled <- resp.StatusCode
	}()
	select {
	case <-midway:
	case <-ctx.Done():
		t.Fatal("the fill never reached the layer")
	}
	cache.Kill()
	if st := <-pulled; st == http.StatusOK {
		t.Fatal("the pull succeeded although its fill was killed")
	}

	// Restarted on the same data directory: the pull completes.
	cache = serveWith(t, bin, testenv.Options{Root: root, Args: args})
	resp, err := http.Get(cache.URL + "/v2/library/app/manifests/v1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pull after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(cache.URL + "/v2/library/app" + layerPath)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, layer) {
		t.Fatalf("the layer after the restart: %d, %d bytes", resp.StatusCode, len(got))
	}
	stopServer(t, cache)
	out, err := exec.Command(bin, "fsck", "--deep", "--root", root).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "clean") {
		t.Fatalf("kvreg fsck after the restart: %v\n%s", err, out)
	}
}

// The operator commands see the server's cached repositories without
// being told the mirrors: kvreg serve records their prefixes in the
// database, and stats (offline, on the stopped server's data directory)
// shows the cache's line.
func TestOperatorCommandsKnowTheCache(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	s := startServer(t, bin, root, "--mirror", "hub=http://127.0.0.1:9", "--cache-max-bytes", "1000000")
	stopServer(t, s)
	out, err := exec.Command(bin, "stats", "--root", root).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cache") {
		t.Fatalf("kvreg stats offline after a server with a mirror: %v\n%s", err, out)
	}
	// A server without mirrors records that too: no cache line after it.
	s = startServer(t, bin, root)
	stopServer(t, s)
	out, err = exec.Command(bin, "stats", "--root", root).CombinedOutput()
	if err != nil || strings.Contains(string(out), "cache") {
		t.Fatalf("kvreg stats offline after a server without mirrors: %v\n%s", err, out)
	}
}
