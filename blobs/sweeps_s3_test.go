package blobs

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// notRecorded is a database that recorded no blob.
func notRecorded(digest.Digest) (bool, error) { return false, nil }

// youngUpload starts an upload of repo and appends body: an upload in
// flight.
func youngUpload(t *testing.T, s *Store, repo string, body []byte) string {
	t.Helper()
	id, err := s.NewUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendExact(repo, id, 0, int64(len(body)), bytes.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	// As a client names it next: by its id, now that it has bytes.
	return UploadRef(id, int64(len(body)))
}

// interrupted leaves on s what a commit that died between promoting and
// recording leaves, and returns the blob's digest.
func interrupted(t *testing.T, s *Store, repo string, body []byte) digest.Digest {
	t.Helper()
	id := youngUpload(t, s, repo, body)
	dg := digest.FromBytes(body)
	if err := s.Driver().Seal(id); err != nil {
		t.Fatal(err)
	}
	if created, err := s.Driver().Promote(id, dg); err != nil || !created {
		t.Fatalf("promote: %v %v", created, err)
	}
	return dg
}

// The sweeps over uploads in flight (finishing interrupted commits,
// expiring idle uploads) cost one listing, however many uploads there
// are, young commits that died included: none is read until it is as old
// as the sweep's cutoff. Once the cutoff passes them, they are read and
// acted on as before.
func TestS3SweepsOfYoungUploadsList(t *testing.T) {
	s, d := s3Store(t)
	const n = 12
	for i := range n {
		youngUpload(t, s, "r", []byte(fmt.Sprintf("bytes of upload %d", i)))
	}
	dg := interrupted(t, s, "r", []byte("a commit that died a moment ago"))

	if got, by := requests(d, func() {
		if k, err := s.FinishInterrupted(time.Now().Add(-10*time.Second), notRecorded); err != nil || k != 0 {
			t.Fatalf("finished %d, %v", k, err)
		}
	}); got != 1 || by["ListObjectsV2"] != 1 {
		t.Errorf("finishing interrupted commits among %d young uploads sent %v, want one listing", n+1, by)
	}
	if got, by := requests(d, func() {
		if k, err := s.ExpireUploads(time.Now().Add(-time.Minute)); err != nil || k != 0 {
			t.Fatalf("expired %d, %v", k, err)
		}
	}); got != 1 || by["ListObjectsV2"] != 1 {
		t.Errorf("expiring among %d young uploads sent %v, want one listing", n+1, by)
	}

	// A cutoff after the writes: every upload is due, and read.
	later := time.Now().Add(time.Minute)
	if got, by := requests(d, func() {
		if k, err := s.FinishInterrupted(later, notRecorded); err != nil || k != 1 {
			t.Fatalf("finished %d, %v", k, err)
		}
	}); by["GetObject"] < n+1 {
		t.Errorf("a sweep with every upload due sent %v (%d), want each upload read", by, got)
	}
	if ok, err := s.Has(dg); err != nil || ok {
		t.Fatalf("the blob of the unrecorded commit: %v %v", ok, err)
	}
	if k, err := s.ExpireUploads(later); err != nil || k != n {
		t.Fatalf("expired %d of %d, %v", k, n, err)
	}
	if ids, err := s.Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads left: %v %v", ids, err)
	}
}

// shiftedDate is an S3 endpoint in front of the test server whose
// answers' Date is moved by the duration in shift: a server on which that
// much more time has passed than on versitygw's clock.
func shiftedDate(t *testing.T, endpoint string, shift *atomic.Int64) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if at, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			r.Header.Set("Date", at.Add(time.Duration(shift.Load())).UTC().Format(http.TimeFormat))
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

// A commit interrupted on one store is left alone by another's sweep while
// young, and finished by it once old on the server's clock, whatever the
// state's own time says: the age that spares an upload is measured
// between two readings of the server's clock, never against this
// process's.
func TestS3SweepFinishesAnOldInterruptedCommit(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var shift atomic.Int64
	viaProxy := srv
	viaProxy.Endpoint = shiftedDate(t, srv.Endpoint, &shift)
	a := New(s3Driver(t, srv, bucket))
	bd := s3Driver(t, viaProxy, bucket)
	b := New(bd)
	dg := interrupted(t, a, "r", []byte("promoted by a store that died before recording"))

	if k, err := b.FinishInterrupted(time.Now().Add(-10*time.Second), notRecorded); err != nil || k != 0 {
		t.Fatalf("a young interrupted commit: finished %d, %v", k, err)
	}
	// A minute passes on the server and on b's side; the state's Modified
	// says it is a minute old too, as b's cutoff does: finished.
	shift.Store(int64(time.Minute))
	if k, err := b.FinishInterrupted(time.Now().Add(time.Minute-10*time.Second), notRecorded); err != nil || k != 1 {
		t.Fatalf("an old interrupted commit: finished %d, %v", k, err)
	}
	if ok, err := b.Has(dg); err != nil || ok {
		t.Fatalf("the blob of the unrecorded commit: %v %v", ok, err)
	}
	if ids, err := b.Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads left: %v %v", ids, err)
	}
}

// A server whose answers are dated before the stamps of objects it lists
// (a gateway whose clock is behind the one that stored them) has its ages
// distrusted: the sweep reads every upload, and an interrupted commit is
// finished once kvreg's cutoff passes its state's time, as it would be
// with no listing at all.
func TestS3SweepDistrustsADateBehindItsStamps(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var shift atomic.Int64
	shift.Store(int64(-time.Minute))
	viaProxy := srv
	viaProxy.Endpoint = shiftedDate(t, srv.Endpoint, &shift)
	a := New(s3Driver(t, srv, bucket))
	bd := s3Driver(t, viaProxy, bucket)
	b := New(bd)
	dg := interrupted(t, a, "r", []byte("promoted by a store that died before recording"))
	if k, err := b.FinishInterrupted(time.Now().Add(time.Minute-10*time.Second), notRecorded); err != nil || k != 1 {
		t.Fatalf("an interrupted commit older than the cutoff: finished %d, %v", k, err)
	}
	if ok, err := b.Has(dg); err != nil || ok {
		t.Fatalf("the blob of the unrecorded commit: %v %v", ok, err)
	}
}
