package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// policyConfig is the rules of TestPoliciesDocker: v* tags of prod/* are
// immutable; team/* may hold 3.5 MiB.
const policyConfig = `immutable:
  - repos: ["prod/*"]
    tags: ["v*"]
quotas:
  - repos: ["team/*"]
    max-bytes: 3.5MiB
`

// TestPoliciesDocker: the operator's rules as docker, crane and regctl
// meet them.
func TestPoliciesDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "policies with docker")()
	d := needDocker(t)
	conf := filepath.Join(t.TempDir(), "kvreg.yaml")
	if err := os.WriteFile(conf, []byte(policyConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := startRegistryWith(t, "", "--config", conf)
	t.Run("ImmutableTag", func(t *testing.T) { testImmutableDocker(t, d, reg) })
	t.Run("Quota", func(t *testing.T) { testQuotaDocker(t, d, reg) })
	reg.fsck(t, true)
}

// testImmutableDocker: docker push of other content to an immutable tag,
// crane tag onto it and regctl's delete of it are refused, and the tag
// keeps its image; the same content pushed again is accepted.
func testImmutableDocker(t *testing.T, d *dockerDaemon, reg *registry) {
	rng := newRand()
	base := makeLayer(t, rng, randomFile("base/shared.bin", 256<<10))
	ref, other := reg.ref("prod/api:v1"), reg.ref("prod/api:next")
	loadImage(t, d, ref, "api-1", base, makeLayer(t, rng, randomFile("app/one.bin", 128<<10)))
	d.must(t, 3*time.Minute, "push", ref)
	_, v1 := reg.getManifest(t, "prod/api", "v1")

	// The same content again: accepted.
	d.must(t, 3*time.Minute, "push", ref)

	// Other content under v1: refused, with the rule's words.
	loadImage(t, d, other, "api-2", base, makeLayer(t, rng, randomFile("app/two.bin", 128<<10)))
	d.must(t, 3*time.Minute, "push", other)
	d.must(t, time.Minute, "tag", other, ref)
	res := d.run(t, 3*time.Minute, "push", ref)
	t.Logf("docker push of other content to prod/api:v1:\n%s", res.combined())
	if res.err == nil || !strings.Contains(res.combined(), "denied") || !strings.Contains(res.combined(), "immutable") {
		t.Errorf("docker push of other content to an immutable tag: want a denied refusal naming immutability, got %v", res.err)
	}

	c := newCrane(t)
	if r := c.run(t, "tag", other, "v1"); r.err == nil || !strings.Contains(r.combined(), "DENIED") {
		t.Errorf("crane tag onto prod/api:v1: want DENIED, got %v:\n%s", r.err, r.combined())
	}
	rc := newRegctl(t)
	rc.must(t, "registry", "set", "--tls", "disabled", reg.addr)
	if r := rc.run(t, "tag", "delete", ref); r.err == nil || !strings.Contains(strings.ToLower(r.combined()), "denied") {
		t.Errorf("regctl tag delete prod/api:v1: want a denied refusal, got %v:\n%s", r.err, r.combined())
	}
	if r := rc.run(t, "manifest", "delete", reg.ref("prod/api@"+v1)); r.err == nil || !strings.Contains(strings.ToLower(r.combined()), "denied") {
		t.Errorf("regctl manifest delete of v1's image: want a denied refusal, got %v:\n%s", r.err, r.combined())
	}
	if _, got := reg.getManifest(t, "prod/api", "v1"); got != v1 {
		t.Errorf("prod/api:v1 is %s after the refusals, want %s", got, v1)
	}
	d.must(t, time.Minute, "rmi", ref, other)
}

// testQuotaDocker: in team/* (3.5 MiB), image A (a 1 MiB base and 1 MiB
// of its own) fits; C, sharing A's base, is charged only its own 0.75 MiB
// and fits too (charged whole it would not); D's own 1 MiB does not, and
// docker push prints the refusal; once C is deleted, D fits.
func testQuotaDocker(t *testing.T, d *dockerDaemon, reg *registry) {
	rng := newRand()
	base := makeLayer(t, rng, randomFile("base/os.bin", 1<<20))
	refA, refC, refD := reg.ref("team/a:1"), reg.ref("team/c:1"), reg.ref("team/d:1")
	loadImage(t, d, refA, "quota-a", base, makeLayer(t, rng, randomFile("app/a.bin", 1<<20)))
	loadImage(t, d, refC, "quota-c", base, makeLayer(t, rng, randomFile("app/c.bin", 768<<10)))
	loadImage(t, d, refD, "quota-d", base, makeLayer(t, rng, randomFile("app/d.bin", 1<<20)))
	d.must(t, 3*time.Minute, "push", refA)
	d.must(t, 3*time.Minute, "push", refC)
	mA, _ := reg.getManifest(t, "team/a", "1")
	mC, dC := reg.getManifest(t, "team/c", "1")
	t.Logf("A %d bytes, C %d bytes, of which shared %d", mA.bytes(), mC.bytes(), mA.Layers[0].Size)
	if mA.bytes()+mC.bytes() <= 3584<<10 {
		t.Fatalf("A and C together (%d bytes) fit in the quota without sharing: the test shows nothing", mA.bytes()+mC.bytes())
	}

	res := d.run(t, 3*time.Minute, "push", refD)
	t.Logf("docker push of D over the quota:\n%s", res.combined())
	if res.err == nil || !strings.Contains(res.combined(), "denied: quota of team/* exceeded") || !strings.Contains(res.combined(), "left") {
		t.Errorf("docker push over the quota: want the refusal with what is needed and left, got %v", res.err)
	}
	if st := reg.manifestStatus(t, "team/d", "1"); st != 404 {
		t.Errorf("team/d:1 after the refusal: %d, want 404", st)
	}

	c := newCrane(t)
	c.must(t, "delete", reg.ref("team/c@"+dC))
	d.must(t, 3*time.Minute, "push", refD)
	if st := reg.manifestStatus(t, "team/d", "1"); st != 200 {
		t.Errorf("team/d:1 after C's delete gave its bytes back: %d, want 200", st)
	}
	d.must(t, time.Minute, "rmi", refA, refC, refD)
}
