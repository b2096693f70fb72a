package s3e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// What a crash leaves in the bucket (a data object, a tail segment of an
// upload without state, a multipart upload no state names) is listed by
// fsck once older than --orphan-grace, never while younger, and is gone
// after a kill -9 and the next start, while an upload in progress (a full
// multipart part and a tail) stays and stats counts its bytes.
func TestStraysGoAfterKillAndRestart(t *testing.T) {
	r := newS3Registry(t)
	srv, bucket, store, bin, root, s := r.srv, r.bucket, r.store, r.bin, r.root, r.s

	// An upload in progress: 9 MiB, a full part (of 8 MiB) and a tail.
	resp, err := http.Post(s.URL+"/v2/team/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("upload start: %d %q", resp.StatusCode, loc)
	}
	if u, err := url.Parse(loc); err == nil {
		loc = u.RequestURI() // the restarted server listens elsewhere
	}
	chunk := bytes.Repeat([]byte("x"), 9<<20)
	req, _ := http.NewRequest(http.MethodPatch, s.URL+loc, bytes.NewReader(chunk))
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload PATCH: %d", resp.StatusCode)
	}
	// The upload has bytes: its next URL names it by its id alone.
	loc = resp.Header.Get("Location")

	// What a crash leaves, written by hand.
	c := srv.Client(bucket)
	for _, k := range []string{"kvreg/data/dead-0123456789abcdef", "kvreg/uploads/deadbeef/tail-1"} {
		if err := c.Put(k, []byte("left by a crash")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateMultipart("kvreg/data/early-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}

	// fsckSplit returns the problems and the pending work fsck finds.
	fsckSplit := func(grace string) (kinds, pending []string) {
		t.Helper()
		out, err := exec.Command(bin, "fsck", "--json", "--orphan-grace", grace, "--root", root, "--blob-store", store).Output()
		var rep struct {
			Problems, Pending []struct{ Kind, Object string }
		}
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			t.Fatalf("fsck: %v, %v\n%s", err, jerr, out)
		}
		for _, p := range rep.Problems {
			kinds = append(kinds, p.Kind+" "+p.Object)
		}
		for _, p := range rep.Pending {
			pending = append(pending, p.Kind+" "+p.Object)
		}
		return kinds, pending
	}
	// fsck is fsckSplit on the running registry, whose strays, written
	// after it opened, are nobody's pending work.
	fsck := func(grace string) []string {
		t.Helper()
		kinds, pending := fsckSplit(grace)
		if len(pending) != 0 {
			t.Fatalf("fsck of the running registry: pending %v", pending)
		}
		return kinds
	}
	if got := fsck("1h"); len(got) != 0 {
		t.Fatalf("fsck with an hour's grace: %v", got)
	}
	want := "orphan-multipart kvreg/data/early-0123456789abcdef|orphan-object kvreg/data/dead-0123456789abcdef|orphan-object kvreg/uploads/deadbeef/tail-1"
	got := fsck("1ns")
	for i := range got {
		got[i], _, _ = strings.Cut(got[i], "?uploadId=")
	}
	if strings.Join(got, "|") != want {
		t.Fatalf("fsck with no grace:\n%v\nwant\n%v", strings.Join(got, "|"), want)
	}

	s.Kill()
	// Stopped, the same strays are work the next start finishes: pending,
	// not problems.
	problems, pending := fsckSplit("1ns")
	for i := range pending {
		pending[i], _, _ = strings.Cut(pending[i], "?uploadId=")
	}
	if len(problems) != 0 || strings.Join(pending, "|") != want {
		t.Fatalf("fsck of the stopped registry: problems %v, pending\n%v\nwant\n%v", problems, strings.Join(pending, "|"), want)
	}
	if s, err = testenv.Start(bin, testenv.Options{Root: root, Args: []string{"--blob-store", store}}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(30 * time.Second)
	if got := fsck("1ns"); len(got) != 0 {
		t.Fatalf("fsck after the restart: %v", got)
	}
	// The upload in progress is still there with its bytes, its
	// multipart upload with it, and the blob store's bytes count it.
	if u, err := url.Parse(loc); err == nil {
		loc = u.RequestURI()
	}
	resp, err = http.Get(s.URL + loc)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("0-%d", len(chunk)-1); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != want {
		t.Fatalf("upload status after the restart: %d, Range %q; want 204, %q", resp.StatusCode, resp.Header.Get("Range"), want)
	}
	mps, err := c.Multiparts()
	if err != nil || len(mps) != 1 {
		t.Fatalf("multipart uploads after the restart: %v, %v; want the upload's", mps, err)
	}
	out, err := exec.Command(bin, "stats", "--json", "--root", root, "--blob-store", store).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		BlobStore struct{ UploadBytes, BlobBytes int64 }
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if st.BlobStore.UploadBytes != int64(len(chunk)) || st.BlobStore.BlobBytes != 0 {
		t.Fatalf("stats: blob store %+v, want %d upload bytes and no blob bytes\n%s", st.BlobStore, len(chunk), out)
	}
}

// fsck compares a blob's record with the bytes in the bucket, not with the
// size its index was written with: a data object cut short is blob-size,
// and one that is gone is blob-missing.
func TestFsckSeesDataObjects(t *testing.T) {
	r := newS3Registry(t)
	srv, bucket, store, bin, root, s := r.srv, r.bucket, r.store, r.bin, r.root, r.s
	body := []byte("a blob whose bytes go astray")
	dg := digestOf(body)
	resp, err := http.Post(s.URL+"/v2/team/app/blobs/uploads/?digest="+dg, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %d", resp.StatusCode)
	}
	c := srv.Client(bucket)
	list, err := c.List("kvreg/data/")
	if err != nil || len(list) != 1 {
		t.Fatalf("data objects: %v, %v", list, err)
	}
	var obj string
	for k := range list {
		obj = k
	}
	fsck := func() string {
		t.Helper()
		out, _ := exec.Command(bin, "fsck", "--json", "--root", root, "--blob-store", store).Output()
		var rep struct {
			Problems []struct{ Kind, Object string }
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("fsck: %v\n%s", err, out)
		}
		var kinds []string
		for _, p := range rep.Problems {
			kinds = append(kinds, p.Kind+" "+p.Object)
		}
		return strings.Join(kinds, "|")
	}
	if got := fsck(); got != "" {
		t.Fatalf("fsck of a clean bucket: %s", got)
	}
	if err := c.Put(obj, []byte("short")); err != nil {
		t.Fatal(err)
	}
	if got := fsck(); got != "blob-size "+dg {
		t.Fatalf("fsck of a data object cut short: %q", got)
	}
	if err := c.Delete(obj); err != nil {
		t.Fatal(err)
	}
	if got := fsck(); got != "blob-missing "+dg {
		t.Fatalf("fsck of a data object gone: %q", got)
	}
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
