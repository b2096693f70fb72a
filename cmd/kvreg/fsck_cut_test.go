package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// fsck --deep of a store whose S3 server cuts every read of a blob's
// bytes short (a proxy in front of it sends half the body, then closes the
// connection): the check cannot run (exit 2, the store unavailable) and
// calls no blob corrupt, a repair through it removes nothing, and the
// check through the server itself is clean.
func TestFsckDeepWithReadsCutShort(t *testing.T) {
	srv, _, at := s3Bucket(t)
	front := s3test.CutReads(t, srv.Endpoint, "/data/")
	bin, root := storedImage(t, at(srv.Endpoint), []byte("layer one, long enough to cut"))

	for _, args := range [][]string{{"fsck", "--deep"}, {"fsck", "--deep", "--repair"}} {
		out, errOut, code := run(t, bin, append(args, "--root", root, "--blob-store", at(front))...)
		if code != 2 || !strings.Contains(errOut, "unavailable") || strings.Contains(out+errOut, "blob-corrupt") {
			t.Fatalf("kvreg %s through a server that cuts reads short: exit %d\n%s%s\nwant exit 2, the store unavailable, no blob called corrupt", strings.Join(args, " "), code, out, errOut)
		}
	}
	out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root, "--blob-store", at(srv.Endpoint))
	if code != 0 {
		t.Fatalf("kvreg fsck --deep through the server itself: exit %d\n%s%s", code, out, errOut)
	}
}

// fsck of a store whose listings miss every object (a proxy in front of
// the S3 server empties them) and whose reads of a blob's index fail (500
// after every attempt): each blob record the listing did not show is
// looked at again under its digest's lock, and that look fails, so the
// check cannot run (exit 2, the store unavailable). It calls no blob
// missing: a repair through it would drop the images that use them. The
// check through the server itself is clean afterwards.
func TestFsckWithListingsMissingAndReadsFailing(t *testing.T) {
	srv, _, at := s3Bucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	contents := regexp.MustCompile(`(?s)<Contents>.*?</Contents>`)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("list-type") != "2" {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = contents.ReplaceAll(b, nil)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	var failed atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256/") {
			failed.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>down</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	bin, root := storedImage(t, at(srv.Endpoint), []byte("a layer the listing misses"))

	through := at(front.URL) + "&max-attempts=2&max-backoff=1ms"
	for _, args := range [][]string{{"fsck"}, {"fsck", "--repair"}} {
		out, errOut, code := run(t, bin, append(args, "--root", root, "--blob-store", through)...)
		if code != 2 || !strings.Contains(errOut, "unavailable") || strings.Contains(out+errOut, "blob-missing") {
			t.Fatalf("kvreg %s with listings missing the blobs and their reads failing: exit %d\n%s%s\nwant exit 2, the store unavailable, no blob called missing", strings.Join(args, " "), code, out, errOut)
		}
	}
	if failed.Load() == 0 {
		t.Fatal("no read of a blob's index reached the proxy: the blobs were not looked at again")
	}
	out, errOut, code := run(t, bin, "fsck", "--deep", "--root", root, "--blob-store", at(srv.Endpoint))
	if code != 0 {
		t.Fatalf("kvreg fsck --deep through the server itself: exit %d\n%s%s", code, out, errOut)
	}
}

// storedImage pushes an image of layer and a base layer through a kvreg
// serve of a new root with its blobs in store, stops it, and returns the
// kvreg binary and the root, for fsck to run on.
func storedImage(t *testing.T, store string, layer []byte) (bin, root string) {
	t.Helper()
	bin, root = buildKvreg(t), t.TempDir()
	s := startServer(t, bin, root, "--blob-store", store)
	if err := push("http://"+s.Addr, "app", "v1", layer, []byte("base layer")); err != nil {
		t.Fatal(err)
	}
	stopServer(t, s)
	return bin, root
}
