package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// retentionPlanReport is what kvreg retention plan --json prints.
type retentionPlanReport struct {
	ReclaimedBytes int64    `json:"reclaimedBytes"`
	Tags           []string `json:"tags"`
}

// TestRetentionAndImmutableCrane drives retention and immutable tags with
// crane: twelve pushes to a keep-10 repository leave at most 10 tags
// after each; twelve tags pushed before the rule existed lose exactly the
// two `kvreg retention plan` names, and the blob store shrinks by exactly
// the bytes it said; an immutable tag refuses crane's push of other
// content, crane tag onto it and crane delete, with DENIED.
func TestRetentionAndImmutableCrane(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "retention and immutable tags with crane")()
	c := newCrane(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "kvreg.yaml")
	if err := os.WriteFile(conf, []byte(`immutable:
  - repos: ["prod/*"]
    tags: ["v*"]
retention:
  - repos: ["ci/*"]
    keep-last: 10
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := newRand()
	appendImage := func(t *testing.T, reg *registry, ref string, n int) {
		t.Helper()
		tar := filepath.Join(dir, fmt.Sprintf("layer-%d.tar", n))
		writeLayerFile(t, tar, rng, randomFile(fmt.Sprintf("opt/%d.bin", n), 64<<10+int64(n)))
		c.must(t, "append", "-f", tar, "-t", reg.ref(ref))
	}
	plan := func(t *testing.T, reg *registry, args ...string) retentionPlanReport {
		t.Helper()
		res := mustRun(t, time.Minute, nil, kvregBin, append([]string{"retention", "plan", "--json", "--root", reg.root}, args...)...)
		var p retentionPlanReport
		mustJSON(t, []byte(res.stdout), &p)
		return p
	}

	// Before the rule: twelve tags. With it, offline, the plan names the
	// two oldest; the server started with it sweeps them at startup.
	reg := startRegistry(t)
	for i := 1; i <= 12; i++ {
		appendImage(t, reg, fmt.Sprintf("ci/old:t%02d", i), i)
	}
	reg.stop(t)
	p := plan(t, reg, "--config", conf)
	if !slices.Equal(p.Tags, []string{"ci/old:t01", "ci/old:t02"}) || p.ReclaimedBytes <= 2*(64<<10) {
		t.Fatalf("offline plan: %+v", p)
	}
	before := reg.blobsSize(t)
	reg.args = []string{"--config", conf}
	reg.restart(t)
	for end := time.Now().Add(time.Minute); len(plan(t, reg).Tags) > 0; {
		if time.Now().After(end) {
			t.Fatal("the startup sweep did not remove the planned tags")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if shrunk := before - reg.blobsSize(t); shrunk != p.ReclaimedBytes {
		t.Fatalf("the blob store shrank by %d bytes, the plan said %d", shrunk, p.ReclaimedBytes)
	}
	if got := lines(c.must(t, "ls", reg.ref("ci/old"))); len(got) != 10 || slices.Contains(got, "t01") || slices.Contains(got, "t02") {
		t.Fatalf("crane ls ci/old after the sweep: %v", got)
	}

	// With the rule: after every push at most 10 tags, the oldest going.
	for i := 1; i <= 12; i++ {
		appendImage(t, reg, fmt.Sprintf("ci/app:t%02d", i), 100+i)
		got := lines(c.must(t, "ls", reg.ref("ci/app")))
		if len(got) != min(i, 10) {
			t.Fatalf("after push %d: crane ls shows %d tags: %v", i, len(got), got)
		}
		if i > 10 && slices.Contains(got, fmt.Sprintf("t%02d", i-10)) {
			t.Fatalf("after push %d: t%02d, the least recently pushed, is still there", i, i-10)
		}
	}

	// Immutable: other content, a retag and a delete are refused.
	appendImage(t, reg, "prod/app:v1", 200)
	appendImage(t, reg, "prod/app:dev", 201)
	v1 := strings.TrimSpace(c.must(t, "digest", reg.ref("prod/app:v1")))
	denied := func(what string, r cmdResult) {
		t.Helper()
		if r.err == nil || !strings.Contains(r.combined(), "DENIED") {
			t.Errorf("%s: want a DENIED refusal, got %v:\n%s", what, r.err, r.combined())
		}
	}
	tar := filepath.Join(dir, "other.tar")
	writeLayerFile(t, tar, rng, randomFile("opt/other.bin", 32<<10))
	denied("crane append onto v1", c.run(t, "append", "-f", tar, "-t", reg.ref("prod/app:v1")))
	denied("crane tag onto v1", c.run(t, "tag", reg.ref("prod/app:dev"), "v1"))
	denied("crane delete of v1's image", c.run(t, "delete", reg.ref("prod/app@"+v1)))
	if got := strings.TrimSpace(c.must(t, "digest", reg.ref("prod/app:v1"))); got != v1 {
		t.Fatalf("prod/app:v1 is now %s, want %s", got, v1)
	}
	c.must(t, "tag", reg.ref("prod/app:v1"), "v1") // the same content again: accepted
	reg.fsck(t, true)
}
