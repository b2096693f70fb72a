package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/kvreg/kvreg/api/upstream"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// The Accept header lists exactly the manifest types kvreg stores.
func TestManifestTypesAreRefcounts(t *testing.T) {
	want := []string{refcount.MediaTypeOCIManifest, refcount.MediaTypeOCIIndex, refcount.MediaTypeDockerManifest, refcount.MediaTypeDockerList}
	if len(upstream.ManifestTypes) != len(want) {
		t.Fatalf("ManifestTypes %v, refcount stores %v", upstream.ManifestTypes, want)
	}
	for i := range want {
		if upstream.ManifestTypes[i] != want[i] {
			t.Errorf("ManifestTypes[%d] = %s, refcount stores %s", i, upstream.ManifestTypes[i], want[i])
		}
	}
}

// An anonymous upstream: a manifest by tag and by digest, its HEAD, a blob
// stream that verifies, and what the upstream does not have.
func TestPullFromAnonymousUpstream(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	img := push(t, srv.URL, "lib/app:v1", 1)
	ct, clk := newCounting(), newClock()
	c := newClient(t, srv.URL, false, ct, clk)
	ctx := context.Background()

	for _, ref := range []string{"v1", img.digest} {
		m, err := c.Manifest(ctx, "lib/app", ref)
		if err != nil {
			t.Fatalf("manifest %s: %v", ref, err)
		}
		if m.Digest.String() != img.digest || !bytes.Equal(m.Bytes, img.manifest) {
			t.Errorf("manifest %s: digest %s, want %s (bytes equal: %v)", ref, m.Digest, img.digest, bytes.Equal(m.Bytes, img.manifest))
		}
		if mt, _ := img.img.MediaType(); m.MediaType != string(mt) {
			t.Errorf("manifest %s: media type %q, want %q", ref, m.MediaType, mt)
		}
	}
	d, mt, size, err := c.HeadManifest(ctx, "lib/app", "v1")
	if err != nil || d.String() != img.digest || size != int64(len(img.manifest)) || mt == "" {
		t.Errorf("HEAD v1: %s %q %d %v; want %s, %d bytes", d, mt, size, err, img.digest, len(img.manifest))
	}

	for _, l := range img.layers {
		ld, _ := l.Digest()
		want := readCompressed(t, l)
		rc, n, err := c.Blob(ctx, "lib/app", digest.Digest(ld.String()))
		if err != nil {
			t.Fatalf("blob %s: %v", ld, err)
		}
		got := readAll(t, upstream.VerifyingReader(rc, digest.Digest(ld.String()), n))
		rc.Close()
		if n != int64(len(want)) || !bytes.Equal(got, want) {
			t.Errorf("blob %s: %d bytes (length %d), want %d", ld, len(got), n, len(want))
		}
	}

	// What the upstream does not have.
	missing := digest.FromString("nothing")
	for what, err := range map[string]error{
		"unknown tag":        second(c.Manifest(ctx, "lib/app", "nope")),
		"unknown repository": second(c.Manifest(ctx, "lib/none", "v1")),
		"unknown digest":     second(c.Manifest(ctx, "lib/app", missing.String())),
		"unknown blob":       third(c.Blob(ctx, "lib/app", missing)),
		"HEAD unknown tag":   fourth(c.HeadManifest(ctx, "lib/app", "nope")),
	} {
		if !errors.Is(err, upstream.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	// Names that would leave the repository's paths never go out.
	before := ct.count("/v2/")
	for _, ref := range []string{"../../x", "v1/../../x", "a b", ""} {
		if _, err := c.Manifest(ctx, "lib/app", ref); !errors.Is(err, upstream.ErrInvalid) {
			t.Errorf("ref %q: %v, want ErrInvalid", ref, err)
		}
	}
	if _, err := c.Manifest(ctx, "lib/../x", "v1"); !errors.Is(err, upstream.ErrInvalid) {
		t.Errorf("repo lib/../x: %v, want ErrInvalid", err)
	}
	if ct.count("/v2/") != before {
		t.Errorf("an invalid name was sent")
	}

	got := c.Requests()
	for k, want := range map[upstream.RequestKey]uint64{
		{Kind: "manifest", Outcome: "ok"}:             2,
		{Kind: "manifest", Outcome: "not_found"}:      3,
		{Kind: "manifest", Outcome: "error"}:          5,
		{Kind: "manifest_head", Outcome: "ok"}:        1,
		{Kind: "manifest_head", Outcome: "not_found"}: 1,
		{Kind: "blob", Outcome: "ok"}:                 uint64(len(img.layers)),
		{Kind: "blob", Outcome: "not_found"}:          1,
		{Kind: "token", Outcome: "ok"}:                0,
	} {
		if got[k] != want {
			t.Errorf("Requests()[%v] = %d, want %d", k, got[k], want)
		}
	}
	if len(got) != 4*5 {
		t.Errorf("Requests() has %d keys, want every kind and outcome (20)", len(got))
	}
}

// A manifest over the size limit is ErrTooLarge.
func TestManifestTooLarge(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	img := push(t, srv.URL, "lib/app:v1", 2)
	c, err := upstream.New(upstream.Config{URL: srv.URL, MaxManifestBytes: int64(len(img.manifest)) - 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manifest(context.Background(), "lib/app", "v1"); !errors.Is(err, upstream.ErrTooLarge) {
		t.Fatalf("manifest of %d bytes over a limit of %d: %v, want ErrTooLarge", len(img.manifest), len(img.manifest)-1, err)
	}
}

// New refuses URLs that are not a registry's base.
func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "http://u:p@host", "http://host/path", "http://host?q=1", "host:5000"} {
		if _, err := upstream.New(upstream.Config{URL: u}); !errors.Is(err, upstream.ErrInvalid) {
			t.Errorf("New(%q): %v, want ErrInvalid", u, err)
		}
	}
	if _, err := upstream.New(upstream.Config{URL: "https://registry-1.docker.io/"}); err != nil {
		t.Errorf("a base with a trailing slash: %v", err)
	}
}

func readCompressed(t *testing.T, l interface{ Compressed() (io.ReadCloser, error) }) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readAll(t, rc)
}

func second[A any](_ A, err error) error                 { return err }
func third[A, B any](_ A, _ B, err error) error          { return err }
func fourth[A, B, C any](_ A, _ B, _ C, err error) error { return err }
