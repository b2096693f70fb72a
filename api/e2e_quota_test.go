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
