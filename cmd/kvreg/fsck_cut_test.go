package main

import (
	"strings"
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
	bin := buildKvreg(t)
	root := t.TempDir()
	s := startServer(t, bin, root, "--blob-store", at(srv.Endpoint))
	if err := push("http://"+s.Addr, "app", "v1", []byte("layer one, long enough to cut"), []byte("base layer")); err != nil {
		t.Fatal(err)
	}
	stopServer(t, s)

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
