package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// The operator's rules and the events with three replicas behind haproxy,
// every request of a push on whichever replica: an immutable tag refuses
// other content from every replica; keep-last 3 holds after every push;
// the quota of a namespace refuses the push that would exceed it; and the
// receiver gets each event once (one replica delivers), in commit order.
func TestClusterPolicies(t *testing.T) {
	rcv, err := testenv.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rcv.Down)

	conf := filepath.Join(t.TempDir(), "kvreg.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`immutable:
  - repos: ["prod/*"]
    tags: ["v*"]
retention:
  - repos: ["ci/*"]
    keep-last: 3
quotas:
  - repos: ["team/*"]
    max-bytes: 300KiB
events:
  - name: hook
    url: %s/hook
    format: cloudevents
    actions: [push, delete]
`, rcv.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClusterArgs(t, []string{"--config", conf})
	rng := rand.New(rand.NewSource(17))
	type want struct{ typ, repo, tag string }
	var wants []want

	// Immutable: other content under prod/app:v1 is refused by each
	// replica (three PUTs, round robin).
	v1 := newImage(randomBlob(rng, 200), randomBlob(rng, 4<<10))
	c.pushImage("prod/app", "v1", v1)
	wants = append(wants, want{events.TypePushed, "prod/app", "v1"})
	other := newImage(randomBlob(rng, 200), randomBlob(rng, 4<<10))
	for _, b := range other.blobs() {
		c.pushBlob("prod/app", b)
	}
	seen := map[string]bool{}
	for range replicas {
		r := c.do(http.MethodPut, "/v2/prod/app/manifests/v1", http.Header{"Content-Type": {mtManifest}}, other.Manifest)
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "DENIED") {
			t.Fatalf("other content under an immutable tag via %s: %d %s", r.Replica, r.Status, r.Body)
		}
		seen[r.Replica] = true
	}
	if len(seen) != replicas {
		t.Errorf("the refusals came from %d replicas, want %d", len(seen), replicas)
	}
	c.pull("prod/app", "v1", v1)

	// Retention: keep-last 3 after every push.
	for i := 1; i <= 5; i++ {
		tag := fmt.Sprintf("t%d", i)
		c.pushImage("ci/app", tag, newImage(randomBlob(rng, 200), randomBlob(rng, 4<<10)))
		wants = append(wants, want{events.TypePushed, "ci/app", tag})
		if i > 3 {
			wants = append(wants, want{events.TypeTagDeleted, "ci/app", fmt.Sprintf("t%d", i-3)})
		}
		r := c.do(http.MethodGet, "/v2/ci/app/tags/list", nil, nil)
		c.expect("tags of ci/app", r, http.StatusOK)
		var tl struct{ Tags []string }
		if err := json.Unmarshal(r.Body, &tl); err != nil || len(tl.Tags) != min(i, 3) {
			t.Fatalf("after push %d, ci/app has tags %v (%v), want %d", i, tl.Tags, err, min(i, 3))
		}
	}

	// Quota: 200 KiB fit in team/*, 150 KiB more do not.
	c.pushImage("team/a", "1", newImage(randomBlob(rng, 200), randomBlob(rng, 200<<10)))
	wants = append(wants, want{events.TypePushed, "team/a", "1"})
	big := newImage(randomBlob(rng, 200), randomBlob(rng, 150<<10))
	for _, b := range big.blobs() {
		c.pushBlob("team/b", b)
	}
	r := c.do(http.MethodPut, "/v2/team/b/manifests/1", http.Header{"Content-Type": {mtManifest}}, big.Manifest)
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "quota of team/* exceeded") {
		t.Fatalf("a push over the quota via %s: %d %s", r.Replica, r.Status, r.Body)
	}

	// The events: each once, in commit order. Wait for them all, then a
	// moment more for any second delivery.
	if _, err := rcv.Wait(time.Minute, testenv.AtLeast(len(wants))); err != nil {
		t.Error(err)
	}
	time.Sleep(2 * time.Second)
	var got []events.CloudEvent
	for _, d := range rcv.Deliveries() {
		var ce events.CloudEvent
		if err := json.Unmarshal(d.Body, &ce); err != nil {
			t.Fatalf("a delivery that is not a CloudEvent: %v\n%s", err, d.Body)
		}
		got = append(got, ce)
	}
	if len(got) != len(wants) {
		t.Errorf("%d events arrived, want %d (each once)", len(got), len(wants))
	}
	ids := map[string]bool{}
	for i, w := range wants {
		if i >= len(got) {
			break
		}
		e := got[i]
		tag := e.Data.Tag
		if tag == "" && len(e.Data.Tags) > 0 {
			tag = e.Data.Tags[0]
		}
		if e.Type != w.typ || e.Data.Repository != w.repo || tag != w.tag || ids[e.ID] {
			t.Errorf("event %d: %s %s:%s id %s, want %s %s:%s", i, e.Type, e.Data.Repository, tag, e.ID, w.typ, w.repo, w.tag)
		}
		ids[e.ID] = true
	}
	c.fsck()
}
