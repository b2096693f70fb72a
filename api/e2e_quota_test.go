package api_test

import (
	"math/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/refcount/policy"
)

// Through HTTP, a quota charges an image sharing its base with one of the
// namespace only its new bytes, refuses a push over it with 403 DENIED and
// a message of the figures (nothing of the push stays tagged), and a
// DELETE makes room at once.
func TestE2EQuota(t *testing.T) {
	r := startRegistry(t, regOptions{Policies: &policy.Set{Quotas: []policy.Quota{{Repos: []string{"team/*"}, MaxBytes: 16 << 10}}}})
	rng := rand.New(rand.NewSource(19))
	base := randomLayer(rng, mtOCILayer, 6<<10)
	one := randomOCIImage(rng, []blob{base}, 2<<10)
	two := randomOCIImage(rng, []blob{base}, 2<<10)
	r.pushImage("team/a", "v1", one)
	// Alone it would not fit beside the first: its base is charged once.
	r.pushImage("team/b", "v1", two)
	big := randomOCIImage(rng, nil, 6<<10)
	for _, b := range big.Blobs() {
		r.pushBlob("team/c", b)
	}
	resp := r.putManifest("team/c", "v1", big.MediaType, big.Body)
	expectError(t, "push over the quota", resp, http.StatusForbidden, "DENIED")
	t.Logf("refusal: %s", resp.Body)
	for _, want := range []string{"quota of team/* exceeded: the push needs ", " bytes) more, ", " of 16 KiB is left ("} {
		if !strings.Contains(string(resp.Body), want) {
			t.Errorf("body %s does not say %q", resp.Body, want)
		}
	}
	r.expectTags("team/c")
	if resp := r.del("/v2/team/a/manifests/v1"); resp.Status != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", resp.Status, resp.Body)
	}
	r.pushManifest("team/c", "v1", big)
	r.pull("team/c", "v1", big)
	r.pull("team/b", "v1", two)
}

// /metrics shows each quota's usage against its limits, and a delete gives
// the bytes back there at once.
func TestQuotaMetrics(t *testing.T) {
	r := startRegistry(t, regOptions{Policies: &policy.Set{Quotas: []policy.Quota{
		{Repos: []string{"team/*"}, MaxBytes: 64 << 10, MaxTags: 5},
		{Repos: []string{"solo/*", "duo/*"}, MaxTags: 2},
	}}})
	rng := rand.New(rand.NewSource(23))
	base := randomLayer(rng, mtOCILayer, 6<<10)
	one := randomOCIImage(rng, []blob{base}, 2<<10)
	two := randomOCIImage(rng, []blob{base}, 3<<10)
	r.pushImage("team/a", "v1", one)
	r.pushImage("team/b", "v1", two)
	r.pushImage("team/b", "v2", two)
	// The namespace's bytes: every distinct blob of team/*, the shared
	// base once, and the manifests.
	distinct := map[string]int64{}
	var manifests int64
	for _, img := range []manifest{one, two} {
		for _, b := range img.Blobs() {
			distinct[b.Digest] = int64(len(b.Data))
		}
		manifests += int64(len(img.Body))
	}
	var want int64 = manifests
	for _, n := range distinct {
		want += n
	}
	m := r.scrape()
	team := `{namespace="team/*"}`
	expectMetric(t, m, "kvreg_quota_used_bytes"+team, float64(want))
	expectMetric(t, m, "kvreg_quota_limit_bytes"+team, 64<<10)
	expectMetric(t, m, "kvreg_quota_used_tags"+team, 3)
	expectMetric(t, m, "kvreg_quota_limit_tags"+team, 5)
	expectMetric(t, m, `kvreg_quota_used_tags{namespace="solo/* duo/*"}`, 0)
	expectMetric(t, m, `kvreg_quota_limit_bytes{namespace="solo/* duo/*"}`, 0)

	if resp := r.del("/v2/team/a/manifests/v1"); resp.Status != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", resp.Status, resp.Body)
	}
	var onesOwn int64 = int64(len(one.Body))
	for _, b := range one.Blobs() {
		if b.Digest != base.Digest {
			onesOwn += int64(len(b.Data))
		}
	}
	m = r.scrape()
	expectMetric(t, m, "kvreg_quota_used_bytes"+team, float64(want-onesOwn))
	expectMetric(t, m, "kvreg_quota_used_tags"+team, 2)
}
