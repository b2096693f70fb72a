package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// sealedUpload makes upload id of b's bytes, sealed, as blobs does before
// a commit promotes it.
func sealedUpload(t *testing.T, d *Driver, id string, b []byte) {
	t.Helper()
	if err := d.CreateUpload(id, "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, id, b)
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
}

// promoted stores b as a blob through an upload, as blobs does.
func promoted(t *testing.T, d *Driver, id string, b []byte) digest.Digest {
	t.Helper()
	sealedUpload(t, d, id, b)
	dg := digest.FromBytes(b)
	if created, err := d.Promote(id, dg); err != nil || !created {
		t.Fatalf("promote: %v %v", created, err)
	}
	return dg
}

func get(t *testing.T, u, rng string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// A presigned URL, fetched with net/http and nothing of the SDK, answers
// the blob's exact bytes from the configured endpoint, as
// application/octet-stream, and a Range request the exact slice, across a
// part boundary.
func TestPresignGet(t *testing.T) {
	d := newDriver(t)
	b := randomBytes(MinPartSize+4321, 7)
	dg := promoted(t, d, "u", b)
	u, err := d.PresignGet(dg, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	srv := d.c.Options().BaseEndpoint
	if want, _ := url.Parse(*srv); pu.Host != want.Host || pu.Scheme != want.Scheme {
		t.Fatalf("presigned URL %s is not on the endpoint %s", u, *srv)
	}
	if q := pu.Query(); q.Get("X-Amz-Expires") != "60" || q.Get("response-content-type") != "application/octet-stream" {
		t.Fatalf("presigned URL's query: %v", q)
	}
	resp, got := get(t, u, "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
		t.Fatalf("GET of the presigned URL: %d, %d bytes of %d, equal %v", resp.StatusCode, len(got), len(b), bytes.Equal(got, b))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	from, to := MinPartSize-100, MinPartSize+99
	resp, got = get(t, u, fmt.Sprintf("bytes=%d-%d", from, to))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, b[from:to+1]) {
		t.Fatalf("Range GET of the presigned URL: %d, %d bytes, equal %v", resp.StatusCode, len(got), bytes.Equal(got, b[from:to+1]))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", from, to, len(b)) {
		t.Fatalf("Content-Range %q", cr)
	}
	// The URL signs a GET only.
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("x"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT with a presigned GET URL: %d", resp.StatusCode)
	}
}

// A URL past its lifetime is refused: signed an hour ago for a minute.
func TestPresignGetExpired(t *testing.T) {
	d := newDriver(t)
	b := randomBytes(1000, 8)
	dg := promoted(t, d, "u", b)
	u, err := d.presignGetAt(dg, 0, "", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, got := get(t, u, "")
	if resp.StatusCode != http.StatusForbidden || bytes.Contains(got, b[:64]) {
		t.Fatalf("GET of an expired URL: %d %s", resp.StatusCode, got)
	}
	// The same signed as of now is good: the refusal is the expiry's.
	u, err = d.presignGetAt(dg, 0, "", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
		t.Fatalf("GET of a fresh URL: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// No index, no URL; and a lifetime S3 cannot sign is refused before any
// request.
func TestPresignGetRefuses(t *testing.T) {
	d := newDriver(t)
	missing := digest.FromString("nothing")
	if _, err := d.PresignGet(missing, time.Minute); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("presign of a missing blob: %v", err)
	}
	for _, ttl := range []time.Duration{0, time.Second / 2, MaxPresignTTL + time.Second} {
		if _, err := d.PresignGet(missing, ttl); !errors.Is(err, ErrConfig) {
			t.Fatalf("presign for %v: %v", ttl, err)
		}
	}
}

// The empty blob has a data object too: its URL answers 200, no bytes.
func TestPresignGetEmpty(t *testing.T) {
	d := newDriver(t)
	dg := promoted(t, d, "u", nil)
	u, err := d.PresignGet(dg, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || len(got) != 0 {
		t.Fatalf("GET of the empty blob's URL: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// Keys that a URL's path must escape (here the configured prefix's space,
// plus sign and accented letter) are signed as S3 reads them: the URL
// serves the bytes.
func TestPresignGetEscapedKey(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	d, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: "kv reg+été", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBytes(3000, 9)
	dg := promoted(t, d, "u", b)
	u, err := d.PresignGet(dg, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "/kv%20reg%2B%C3%A9t%C3%A9/") {
		t.Fatalf("presigned URL %s does not escape the prefix", u)
	}
	if resp, got := get(t, u, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
		t.Fatalf("GET of %s: %d, equal %v", u, resp.StatusCode, bytes.Equal(got, b))
	}
}
