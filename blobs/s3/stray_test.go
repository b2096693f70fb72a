package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

func listStrays(t *testing.T, d *Driver) map[string]driver.Stray {
	t.Helper()
	out := map[string]driver.Stray{}
	if err := d.Strays(func(s driver.Stray) error { out[s.Name] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(m map[string]driver.Stray) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readBlob(t *testing.T, d *Driver, dg digest.Digest) []byte {
	t.Helper()
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStrays makes each kind of stray a crash can leave, by hand, beside a
// promoted blob, a sealed upload and an upload in progress with parts and
// a tail, and checks that exactly the strays are listed, that removing them leaves the rest whole.
func TestStrays(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()

	// Kept: a promoted blob, a sealed upload, an upload with a part and a tail.
	body := randomBytes(1000, 1)
	if err := d.CreateUpload("blob", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "blob", body)
	if err := d.Seal("blob"); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(body)
	if _, err := d.Promote("blob", dg); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("blob"); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateUpload("sealed", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "sealed", []byte("sealed"))
	if err := d.Seal("sealed"); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateUpload("live", "r"); err != nil {
		t.Fatal(err)
	}
	live := appendAll(t, d, "live", randomBytes(MinPartSize+10, 2), []byte("tail"))
	if got := listStrays(t, d); len(got) != 0 {
		t.Fatalf("strays before any was made: %v", names(got))
	}

	var want []string
	// A data object whose index was removed (Remove interrupted).
	gone := randomBytes(500, 3)
	if err := d.CreateUpload("gone", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "gone", gone)
	if err := d.Seal("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Promote("gone", digest.FromBytes(gone)); err != nil {
		t.Fatal(err)
	}
	st, err := d.readState(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("gone"); err != nil {
		t.Fatal(err)
	}
	if err := d.del(ctx, d.indexKey(digest.FromBytes(gone))); err != nil {
		t.Fatal(err)
	}
	want = append(want, st.Object)
	// A sealed upload's data object whose state is gone.
	if err := d.CreateUpload("orphan", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "orphan", []byte("orphan bytes"))
	if err := d.Seal("orphan"); err != nil {
		t.Fatal(err)
	}
	if st, err = d.readState(ctx, "orphan"); err != nil {
		t.Fatal(err)
	}
	if err := d.del(ctx, d.stateKey("orphan")); err != nil {
		t.Fatal(err)
	}
	want = append(want, st.Object)
	// A multipart upload created before any state named it.
	early := d.key("data", "early-0123456789abcdef")
	mp, err := d.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &early})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, early+multipartSep+aws.ToString(mp.UploadId))
	// A second multipart upload on the live upload's object, which its
	// state does not name.
	lst, err := d.readState(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	mp2, err := d.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &lst.Object})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, lst.Object+multipartSep+aws.ToString(mp2.UploadId))
	// A tail segment the live state does not name, and segments of an
	// upload with no state.
	for _, k := range []string{d.uploadPrefix("live") + "tail-99", d.uploadPrefix("nostate") + "tail-1", d.uploadPrefix("nostate") + "tail-2"} {
		if err := d.put(ctx, k, []byte("stray"), false); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	sort.Strings(want)

	got := listStrays(t, d)
	if strings.Join(names(got), "\n") != strings.Join(want, "\n") {
		t.Fatalf("strays:\n%s\nwant:\n%s", strings.Join(names(got), "\n"), strings.Join(want, "\n"))
	}
	if s := got[want[0]]; s.Kind == "" || s.Modified.IsZero() {
		t.Fatalf("stray without kind or time: %+v", s)
	}
	if s := got[early+multipartSep+aws.ToString(mp.UploadId)]; s.Kind != driver.StrayMultipart {
		t.Fatalf("multipart stray of kind %q", s.Kind)
	}
	for _, name := range want {
		if err := d.RemoveStray(name); err != nil {
			t.Fatal(err)
		}
	}
	if got := listStrays(t, d); len(got) != 0 {
		t.Fatalf("strays after removal: %v", names(got))
	}
	mps, err := d.multiparts(ctx)
	if err != nil || len(mps) != 1 || mps[0].id != lst.MultipartID {
		t.Fatalf("multipart uploads after removal: %+v, %v; want the live one only", mps, err)
	}
	// The rest is whole.
	if b := readBlob(t, d, dg); string(b) != string(body) {
		t.Fatal("promoted blob changed")
	}
	if b := readUpload(t, d, "sealed"); string(b) != "sealed" {
		t.Fatalf("sealed upload reads %q", b)
	}
	if err := d.Seal("live"); err != nil {
		t.Fatal(err)
	}
	if b := readUpload(t, d, "live"); string(b) != string(live) {
		t.Fatal("live upload changed")
	}
	if err := d.RemoveStray(d.key("blobs", "sha256", dg.Encoded())); !errors.Is(err, driver.ErrInvalidName) {
		t.Fatalf("RemoveStray of an index: %v, want ErrInvalidName", err)
	}
}

// TestWalkStoredSizes: Walk reports the data object's size, not the
// index's, whether it reads the index or knows it by its ETag, and leaves out an index whose data object is gone, which
// StoredSize reports missing while Stat, reading the index only, does not.
func TestWalkStoredSizes(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	var dgs []digest.Digest
	for i := range 3 {
		b := randomBytes(100+i, uint64(10+i))
		id := "w" + string(rune('a'+i))
		if err := d.CreateUpload(id, "r"); err != nil {
			t.Fatal(err)
		}
		appendAll(t, d, id, b)
		if err := d.Seal(id); err != nil {
			t.Fatal(err)
		}
		dg := digest.FromBytes(b)
		if _, err := d.Promote(id, dg); err != nil {
			t.Fatal(err)
		}
		if err := d.RemoveUpload(id); err != nil {
			t.Fatal(err)
		}
		dgs = append(dgs, dg)
	}
	// Blob 0's data object is rewritten shorter; blob 1's is gone.
	ix0, _ := d.readIndex(ctx, dgs[0])
	if err := d.put(ctx, ix0.Object, []byte("short"), false); err != nil {
		t.Fatal(err)
	}
	ix1, _ := d.readIndex(ctx, dgs[1])
	if err := d.del(ctx, ix1.Object); err != nil {
		t.Fatal(err)
	}
	// Blob 2's index holds the same, spelled otherwise: its ETag is not
	// the one Walk expects, so Walk reads it.
	ix2, _ := d.readIndex(ctx, dgs[2])
	if err := d.put(ctx, d.indexKey(dgs[2]), []byte(fmt.Sprintf(`{ "object": %q, "size": %d }`, ix2.Object, ix2.Size)), false); err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]int64{}
	if err := d.Walk(func(dg digest.Digest, _ string, size int64) error { got[dg] = size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[dgs[0]] != 5 || got[dgs[2]] != 102 {
		t.Fatalf("walk: %v", got)
	}
	ix0, _ = d.readIndex(ctx, dgs[0])
	if n, loc, err := d.StoredSize(dgs[0]); err != nil || n != 5 || loc != ix0.Object {
		t.Fatalf("StoredSize of the rewritten blob: %d at %q, %v; want 5 at %q", n, loc, err, ix0.Object)
	}
	if _, _, err := d.StoredSize(dgs[1]); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("StoredSize without data object: %v", err)
	}
	if n, err := d.Stat(dgs[1]); err != nil || n != 101 {
		t.Fatalf("Stat reads the index: %d, %v", n, err)
	}
}
