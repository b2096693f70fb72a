package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// A presign for an incarnation already presigned in this process sends no
// request; another incarnation, or none, reads the index again.
func TestPresignIncarnationRemembered(t *testing.T) {
	d := newDriver(t)
	body := randomBytes(10<<10, 3)
	dg := promoted(t, d, "u", body)
	var u1, u2 string
	var err error
	if got := delta(d, func() { u1, err = d.PresignGetIncarnation(dg, 5, "", time.Minute) }); err != nil || sum(got) != 1 || got["GetObject"] != 1 {
		t.Fatalf("first presign of incarnation 5: %v, sent %v, want one GetObject (the index)", err, got)
	}
	if got := delta(d, func() { u2, err = d.PresignGetIncarnation(dg, 5, "", time.Minute) }); err != nil || sum(got) != 0 {
		t.Fatalf("second presign of incarnation 5: %v, sent %v, want nothing", err, got)
	}
	if u1 != u2 {
		t.Errorf("the second presign signed again: %s, then %s", u1, u2)
	}
	for _, u := range []string{u1, u2} {
		if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("GET of %s: %d, equal %v", u, resp.StatusCode, bytes.Equal(got, body))
		}
	}
	for _, inc := range []int64{6, 0} {
		if got := delta(d, func() { _, err = d.PresignGetIncarnation(dg, inc, "", time.Minute) }); err != nil || got["GetObject"] != 1 {
			t.Fatalf("presign of incarnation %d after one of 5: %v, sent %v, want the index read", inc, err, got)
		}
	}
}

// A presign given the location PromoteLocated named (as a blob's record
// keeps it) sends no request, in a process that never read the index, and
// its URL serves the bytes. Open, which needs the size, still reads the
// index: a location from a record is not one it uses.
func TestPresignRecordedLocation(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	a, b := driverOn(t, srv, bucket), driverOn(t, srv, bucket)
	body := randomBytes(10<<10, 4)
	const id = "u"
	sealedUpload(t, b, id, body)
	dg := digest.FromBytes(body)
	created, obj, err := b.PromoteLocated(id, dg)
	if err != nil || !created || obj == "" {
		t.Fatalf("PromoteLocated: created %v, location %q, %v", created, obj, err)
	}
	if ix, err := b.readIndex(context.Background(), dg); err != nil || ix.Object != obj {
		t.Fatalf("the index names %q, PromoteLocated %q: %v", ix.Object, obj, err)
	}
	// Another upload of the same bytes finds the blob stored.
	sealedUpload(t, b, "u2", body)
	if created, again, err := b.PromoteLocated("u2", dg); err != nil || created || again != "" {
		t.Fatalf("PromoteLocated of another upload, the blob stored: created %v, location %q, %v", created, again, err)
	}
	var u string
	if got := delta(a, func() { u, err = a.PresignGetIncarnation(dg, 7, obj, time.Minute) }); err != nil || sum(got) != 0 {
		t.Fatalf("presign with the recorded location: %v, sent %v, want nothing", err, got)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET of its URL: %d, equal %v", resp.StatusCode, bytes.Equal(got, body))
	}
	var read []byte
	got := delta(a, func() {
		var r io.ReadCloser
		if r, err = a.Open(dg); err == nil {
			read, err = io.ReadAll(r)
			r.Close()
		}
	})
	if err != nil || !bytes.Equal(read, body) || got["GetObject"] < 2 {
		t.Fatalf("Open after the presign: %d bytes of %d, %v, sent %v, want the index read and the data", len(read), len(body), err, got)
	}
}

// Another process on the same bucket (a replica) removes the blob and
// stores it again from a new upload, into another data object. A presign
// of the new incarnation reads the index and signs the new object, whose
// URL serves the bytes; the old incarnation's location, which names an
// object that is gone, is not used for it.
func TestPresignIncarnationAfterAnotherReplicaPushesAgain(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	a, b := driverOn(t, srv, bucket), driverOn(t, srv, bucket)
	body := randomBytes(100<<10, 11)
	dg := promoted(t, b, "u1", body)
	const first, second = int64(1764460800000000001), int64(1764460800000000002)
	old, err := a.PresignGetIncarnation(dg, first, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	oldObject, _ := b.readIndex(context.Background(), dg)
	if resp, got := get(t, old, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET of the first incarnation's URL: %d", resp.StatusCode)
	}

	if err := b.Remove(dg); err != nil {
		t.Fatal(err)
	}
	if got := promoted(t, b, "u2", body); got != dg {
		t.Fatal("digest changed")
	}
	newObject, err := b.readIndex(context.Background(), dg)
	if err != nil || newObject.Object == oldObject.Object {
		t.Fatalf("the second upload's data object %q, the first's %q: %v", newObject.Object, oldObject.Object, err)
	}
	// The first incarnation's object is gone: a URL of it fails.
	if resp, _ := get(t, old, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of the removed object's URL: %d, want 404", resp.StatusCode)
	}

	var u string
	if got := delta(a, func() { u, err = a.PresignGetIncarnation(dg, second, "", time.Minute) }); err != nil || got["GetObject"] != 1 {
		t.Fatalf("presign of the new incarnation: %v, sent %v, want the index read", err, got)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(pu.Path, "/"+newObject.Object) {
		t.Fatalf("URL path %s does not name the new data object %s", pu.Path, newObject.Object)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET of the new incarnation's URL: %d, equal %v", resp.StatusCode, bytes.Equal(got, body))
	}
	// And it is what a remembers for the new incarnation from now on.
	if got := delta(a, func() { u, err = a.PresignGetIncarnation(dg, second, "", time.Minute) }); err != nil || sum(got) != 0 {
		t.Fatalf("second presign of the new incarnation: %v, sent %v, want nothing", err, got)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET of the remembered new incarnation's URL: %d", resp.StatusCode)
	}
}

// A URL signed for a location is handed out again only for the same
// lifetime and while at least half of it is left.
func TestPresignedURLReusedForHalfItsLifetime(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	loc := location{url: "http://bucket/x?X-Amz-Signature=1", urlTTL: 10 * time.Minute, signed: t0}
	for _, c := range []struct {
		ttl  time.Duration
		at   time.Time
		want bool
	}{
		{10 * time.Minute, t0, true},
		{10 * time.Minute, t0.Add(4*time.Minute + 59*time.Second), true},
		{10 * time.Minute, t0.Add(5 * time.Minute), false},
		{10 * time.Minute, t0.Add(-time.Second), false}, // the clock went back
		{time.Minute, t0, false},
		{20 * time.Minute, t0, false},
	} {
		if got := loc.reusable(c.ttl, c.at); got != c.want {
			t.Errorf("ttl %v at %v: reusable %v, want %v", c.ttl, c.at.Sub(t0), got, c.want)
		}
	}
	if (location{}).reusable(10*time.Minute, t0) {
		t.Error("a location with no URL is reusable")
	}
}
