// Package drivertest is the conformance suite every blob driver runs: what
// package blobs relies on, checked against a real instance of the driver
// and, where it is about blobs' protocols over the driver, through a
// blobs.Store. A driver's package runs it from an external test package
// (blobs imports the drivers).
package drivertest

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// Run runs the suite; open returns a fresh, empty driver for each test.
func Run(t *testing.T, open func(t *testing.T) driver.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d driver.Driver)
	}{
		{"PromoteThenRead", testPromoteThenRead},
		{"PromoteExisting", testPromoteExisting},
		{"PromoteLocated", testPromoteLocated},
		{"Missing", testMissing},
		{"RemoveIsIdempotent", testRemoveIsIdempotent},
		{"WalkListsBlobs", testWalkListsBlobs},
		{"TruncateUndoesFailedAppend", testTruncateUndoesFailedAppend},
		{"Uploads", testUploads},
		{"UploadsWritten", testUploadsWritten},
		{"Unpromote", testUnpromote},
		{"ReadWhileRemoved", testReadWhileRemoved},
		{"NoStraysNamed", testNoStraysNamed},
		{"ResumeAfterRestart", testResumeAfterRestart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// upload stores body as a new upload, sealed, and returns its id.
func upload(t *testing.T, d driver.Driver, id string, body []byte) {
	t.Helper()
	if err := d.CreateUpload(id, "repo/"+id); err != nil {
		t.Fatal(err)
	}
	// In two appends, the second at the size the first left.
	half := int64(len(body) / 2)
	if n, err := d.Append(id, 0, bytes.NewReader(body[:half])); err != nil || n != half {
		t.Fatalf("append: %d, %v", n, err)
	}
	if n, err := d.Append(id, half, bytes.NewReader(body[half:])); err != nil || n != int64(len(body))-half {
		t.Fatalf("append: %d, %v", n, err)
	}
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
}

func promote(t *testing.T, d driver.Driver, id string, body []byte) digest.Digest {
	t.Helper()
	upload(t, d, id, body)
	dg := digest.FromBytes(body)
	created, err := d.Promote(id, dg)
	if err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	if err := d.RemoveUpload(id); err != nil {
		t.Fatal(err)
	}
	return dg
}

func read(t *testing.T, d driver.Driver, dg digest.Digest) []byte {
	t.Helper()
	f, err := d.Open(dg)
	if err != nil {
		t.Fatalf("open %s: %v", dg, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testPromoteThenRead(t *testing.T, d driver.Driver) {
	body := []byte("0123456789abcdefghij")
	dg := promote(t, d, "u1", body)
	if n, err := d.Stat(dg); err != nil || n != int64(len(body)) {
		t.Fatalf("stat: %d, %v", n, err)
	}
	if got := read(t, d, dg); !bytes.Equal(got, body) {
		t.Fatalf("read %q", got)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off, err := f.Seek(10, io.SeekStart); err != nil || off != 10 {
		t.Fatalf("seek: %d, %v", off, err)
	}
	rest, _ := io.ReadAll(f)
	if string(rest) != "abcdefghij" {
		t.Fatalf("after seek: %q", rest)
	}
	if end, err := f.Seek(0, io.SeekEnd); err != nil || end != int64(len(body)) {
		t.Fatalf("seek to end: %d, %v", end, err)
	}
	if ids, err := d.Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads after removal: %v, %v", ids, err)
	}
}

// A driver that names locations names one for the blob an upload
// created, none for an upload that found the blob stored; a presign from
// that location, where the driver has one, serves the bytes.
func testPromoteLocated(t *testing.T, d driver.Driver) {
	lp, ok := d.(driver.LocatingPromoter)
	if !ok {
		t.Skipf("%T names no locations", d)
	}
	body := []byte("located bytes")
	dg := digest.FromBytes(body)
	upload(t, d, "first", body)
	created, loc, err := lp.PromoteLocated("first", dg)
	if err != nil || !created || loc == "" || len(loc) > 1024 {
		t.Fatalf("first promote: created %v, location %q, %v", created, loc, err)
	}
	upload(t, d, "second", body)
	if created, other, err := lp.PromoteLocated("second", dg); err != nil || created || other != "" {
		t.Fatalf("second promote: created %v, location %q, %v; want false and none", created, other, err)
	}
	if got := read(t, d, dg); !bytes.Equal(got, body) {
		t.Fatalf("read %q", got)
	}
	ss, sized := d.(driver.StoredSizer)
	if sized {
		if n, now, err := ss.StoredSize(dg); err != nil || now != loc || n != int64(len(body)) {
			t.Fatalf("StoredSize: %d at %q, %v; want %d at %q", n, now, err, len(body), loc)
		}
	}
	var walked string
	if err := d.Walk(func(w digest.Digest, name string, _ int64) error {
		if w == dg {
			walked = name
		}
		return nil
	}); err != nil || walked != loc {
		t.Fatalf("Walk named the blob %q (%v), want its location %q", walked, err, loc)
	}
	if sized {
		if _, _, err := ss.StoredSize(digest.FromString("absent")); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("StoredSize of an absent blob: %v", err)
		}
	}
	if ip, ok := d.(driver.IncarnationPresigner); ok {
		if u, err := ip.PresignGetIncarnation(dg, 1, loc, time.Minute); err != nil || u == "" {
			t.Fatalf("presign from the location: %q, %v", u, err)
		}
	}
}

func testPromoteExisting(t *testing.T, d driver.Driver) {
	body := []byte("same bytes")
	dg := promote(t, d, "first", body)
	upload(t, d, "second", body)
	created, err := d.Promote("second", dg)
	if err != nil || created {
		t.Fatalf("second promote: created %v, %v; want false", created, err)
	}
	// The upload that found the blob there is not marked: nothing of it
	// is in the blob.
	if info, err := d.Upload("second"); err != nil || info.Promoting != "" {
		t.Fatalf("upload after a promote that did nothing: %+v, %v", info, err)
	}
	if err := d.Unpromote("second", dg); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, dg); !bytes.Equal(got, body) {
		t.Fatalf("unpromote of an upload that did not create the blob removed it: %q", got)
	}
}

func testMissing(t *testing.T, d driver.Driver) {
	dg := digest.FromString("never stored")
	if _, err := d.Stat(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("stat: %v", err)
	}
	if _, err := d.Open(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("open: %v", err)
	}
	if _, err := d.Upload("nosuch"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("upload: %v", err)
	}
	if _, err := d.Append("nosuch", 0, strings.NewReader("x")); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("append: %v", err)
	}
	if err := d.RemoveUpload("nosuch"); err != nil {
		t.Errorf("remove of a missing upload: %v", err)
	}
}

func testRemoveIsIdempotent(t *testing.T, d driver.Driver) {
	dg := promote(t, d, "u", []byte("to go"))
	for i := 0; i < 2; i++ {
		if err := d.Remove(dg); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if _, err := d.Stat(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("stat after remove: %v", err)
	}
}

func testWalkListsBlobs(t *testing.T, d driver.Driver) {
	want := map[digest.Digest]int64{}
	for i, s := range []string{"a", "bb", "ccc"} {
		dg := promote(t, d, "w"+string(rune('0'+i)), []byte(s))
		want[dg] = int64(len(s))
	}
	d.Remove(promote(t, d, "gone", []byte("removed")))
	upload(t, d, "pending", []byte("an upload is not a blob"))
	got := map[digest.Digest]int64{}
	err := d.Walk(func(dg digest.Digest, name string, size int64) error {
		if dg == "" {
			t.Errorf("walk: an object that is not a blob: %s", name)
		}
		got[dg] = size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("walk: %v, want %v", got, want)
	}
	for dg, n := range want {
		if got[dg] != n {
			t.Fatalf("walk: %s has %d bytes, want %d", dg, got[dg], n)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := d.Walk(func(digest.Digest, string, int64) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("walk stopped by fn: %v after %d calls", err, calls)
	}
}

// failing yields data, then err.
type failing struct {
	data []byte
	err  error
}

func (r *failing) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func testTruncateUndoesFailedAppend(t *testing.T, d driver.Driver) {
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Append("u", 0, strings.NewReader("keep")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	n, err := d.Append("u", 4, &failing{data: []byte("lost"), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("append: %d, %v; want the reader's error", n, err)
	}
	if err := d.Truncate("u", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Append("u", 4, strings.NewReader("+more")); err != nil {
		t.Fatal(err)
	}
	rc, err := d.ReadUpload("u")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "keep+more" {
		t.Fatalf("upload holds %q", got)
	}
	if info, err := d.Upload("u"); err != nil || info.Size != 9 || info.Repo != "r" {
		t.Fatalf("upload: %+v, %v", info, err)
	}
}

func testUploads(t *testing.T, d driver.Driver) {
	for _, id := range []string{"x", "y", "z"} {
		if err := d.CreateUpload(id, "repo-"+id); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.CreateUpload("x", "again"); err == nil {
		t.Fatal("a second upload of one id was created")
	}
	if err := d.RemoveUpload("y"); err != nil {
		t.Fatal(err)
	}
	ids, err := d.Uploads()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"x", "z"}) {
		t.Fatalf("uploads %v", ids)
	}
	info, err := d.Upload("z")
	if err != nil || info.Repo != "repo-z" || info.Size != 0 || info.Promoting != "" || info.Modified.IsZero() {
		t.Fatalf("upload z: %+v, %v", info, err)
	}
}

// A promotion a crash interrupted is visible on the upload, and Unpromote
// removes the blob it made and only that.
func testUnpromote(t *testing.T, d driver.Driver) {
	body := []byte("half-committed")
	dg := digest.FromBytes(body)
	upload(t, d, "u", body)
	if created, err := d.Promote("u", dg); err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	info, err := d.Upload("u")
	if err != nil || info.Promoting != dg || info.Size != int64(len(body)) {
		t.Fatalf("upload while promoting: %+v, %v", info, err)
	}
	if err := d.Unpromote("u", dg); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("stat after unpromote: %v", err)
	}
	// Another upload's blob of the same digest stays.
	promote(t, d, "other", body)
	if err := d.Unpromote("u", dg); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, dg); !bytes.Equal(got, body) {
		t.Fatalf("unpromote removed another upload's blob: %q", got)
	}
}

// A blob removed while a reader has it open stays readable through it: a
// pull in flight survives a delete, also after the seek to the end and
// back with which an HTTP server learns the size of what it sends.
func testReadWhileRemoved(t *testing.T, d driver.Driver) {
	body := bytes.Repeat([]byte("layer "), 1000)
	dg := promote(t, d, "u", body)
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.Remove(dg); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Seek(0, io.SeekEnd); err != nil || n != int64(len(body)) {
		t.Fatalf("seek to the end: %d, %v", n, err)
	}
	if n, err := f.Seek(0, io.SeekStart); err != nil || n != 0 {
		t.Fatalf("seek to the start: %d, %v", n, err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read after remove: %d bytes, %v", len(got), err)
	}
}
