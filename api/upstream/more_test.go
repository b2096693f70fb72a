package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/api/upstream"
)

// An OCI index comes back with its media type, even from an upstream that
// calls every manifest application/json; a HEAD without
// Docker-Content-Digest falls back to a GET.
func TestIndexAndPlainJSONUpstream(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	open, _ := pushTo.Load(srv.URL)
	ref, err := name.ParseReference(strings.TrimPrefix(open.(string), "http://")+"/lib/multi:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	front := startProxy(t, srv.URL, func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/manifests/") {
			resp.Header.Set("Content-Type", "application/json")
			resp.Header.Del("Docker-Content-Digest")
		}
		return nil
	})
	c := newClient(t, front.URL, false, newCounting(), newClock())
	ctx := context.Background()
	m, err := c.Manifest(ctx, "lib/multi", "v1")
	if err != nil || m.Digest.String() != want.String() || m.MediaType != upstream.MediaTypeOCIIndex {
		t.Fatalf("index: %s %q %v; want %s %s", m.Digest, m.MediaType, err, want, upstream.MediaTypeOCIIndex)
	}
	d, mt, size, err := c.HeadManifest(ctx, "lib/multi", "v1")
	if err != nil || d.String() != want.String() || mt != upstream.MediaTypeOCIIndex || size != int64(len(m.Bytes)) {
		t.Fatalf("HEAD without a digest: %s %q %d %v", d, mt, size, err)
	}
	got := c.Requests()
	if got[upstream.RequestKey{Kind: "manifest", Outcome: "ok"}] != 2 || got[upstream.RequestKey{Kind: "manifest_head", Outcome: "ok"}] != 1 {
		t.Errorf("counters: %v", got)
	}
}

// The caller's own cancellation is neither the upstream's unavailability
// nor counted as such.
func TestCallerCancellation(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	push(t, srv.URL, "lib/app:v1", 12)
	c := newClient(t, srv.URL, false, newCounting(), newClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Manifest(ctx, "lib/app", "v1")
	if !errors.Is(err, context.Canceled) || errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("a cancelled pull: %v, want context.Canceled", err)
	}
	if got := c.Requests()[upstream.RequestKey{Kind: "manifest", Outcome: "error"}]; got != 1 {
		t.Errorf("error counter %d, want 1", got)
	}
}
