package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// rmReport runs kvreg rm with --json (and args) and decodes its report.
func rmReport(t *testing.T, bin string, args ...string) (*refcount.RemoveReport, string) {
	t.Helper()
	out, errOut, code := run(t, bin, append([]string{"rm", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("kvreg rm %v: exit %d\n%s%s", args, code, out, errOut)
	}
	var rep refcount.RemoveReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kvreg rm %v: %v\n%s", args, err, out)
	}
	return &rep, errOut
}

// dryRunThenRm checks that kvreg rm --dry-run says, in words and in JSON,
// the figure the rm that follows reclaims, and leaves the store as it was.
func dryRunThenRm(t *testing.T, bin, root, target, mode string) *refcount.RemoveReport {
	t.Helper()
	before, _, _ := run(t, bin, "stats", "--root", root, "--json")
	out, errOut, code := run(t, bin, "rm", "--root", root, "--dry-run", target)
	if code != 0 || !strings.Contains(errOut, mode) {
		t.Fatalf("rm --dry-run %s: exit %d\n%s%s", target, code, out, errOut)
	}
	t.Logf("kvreg rm --dry-run %s: %s", target, out)
	plan, _ := rmReport(t, bin, "--root", root, "--dry-run", target)
	if !plan.DryRun {
		t.Fatalf("plan %+v", plan)
	}
	words := fmt.Sprintf("; %d bytes (%s) would be reclaimed\n", plan.ReclaimedBytes, refcount.HumanBytes(plan.ReclaimedBytes))
	if !strings.HasPrefix(out, "would remove "+target+" (") || !strings.HasSuffix(out, words) {
		t.Fatalf("rm --dry-run %s printed %q, want ...%q", target, out, words)
	}
	if after, _, _ := run(t, bin, "stats", "--root", root, "--json"); after != before {
		t.Fatalf("rm --dry-run changed the stats:\n%s\n%s", before, after)
	}
	for _, b := range plan.Blobs {
		if !blobStored(t, root, digest.Digest(b.Digest)) {
			t.Fatalf("rm --dry-run removed %s", b.Digest)
		}
	}
	rm, _ := rmReport(t, bin, "--root", root, target)
	if rm.DryRun || rm.ReclaimedBytes != plan.ReclaimedBytes || !reflect.DeepEqual(rm.Blobs, plan.Blobs) ||
		!reflect.DeepEqual(rm.Manifests, plan.Manifests) || !reflect.DeepEqual(rm.Tags, plan.Tags) {
		t.Fatalf("rm %s:\n%+v\nplanned:\n%+v", target, rm, plan)
	}
	for _, b := range rm.Blobs {
		if blobStored(t, root, digest.Digest(b.Digest)) {
			t.Fatalf("rm kept %s", b.Digest)
		}
	}
	return plan
}

// kvreg rm --dry-run, online through the server's socket and offline, says
// what the rm that follows then reclaims, to the byte.
func TestRmDryRunOnlineAndOffline(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	srv := startServer(t, bin, root)
	base := "http://" + srv.Addr
	rnd := rand.New(rand.NewSource(11))
	baseLayer := make([]byte, 40<<10)
	rnd.Read(baseLayer)
	layers := map[string][]byte{}
	for _, ref := range []string{"a/x:v1", "a/x:v2", "a/y:v1", "a/z:v1"} {
		l := make([]byte, 10<<10+rnd.Intn(10<<10))
		rnd.Read(l)
		layers[ref] = l
		repo, tag, _ := strings.Cut(ref, ":")
		if err := push(base, repo, tag, l, baseLayer); err != nil {
			t.Fatal(err)
		}
	}

	// Online: a tag whose layer is its own, the base shared.
	p := dryRunThenRm(t, bin, root, "a/x:v1", "online")
	if len(p.Blobs) != 2 || p.ReclaimedBytes <= int64(len(layers["a/x:v1"])) {
		t.Fatalf("plan of a/x:v1: %+v", p)
	}
	for _, b := range p.Blobs {
		if b.Digest == string(digest.FromBytes(baseLayer)) {
			t.Fatal("the plan frees the shared base layer")
		}
	}
	// Online: a whole repository.
	dryRunThenRm(t, bin, root, "a/y", "online")
	if _, errOut, code := run(t, bin, "rm", "--root", root, "--dry-run", "a/nope:v1"); code == 0 {
		t.Fatalf("rm --dry-run of an unknown tag succeeded: %s", errOut)
	}

	// Offline: by digest, then the last image, which takes the base too.
	stopServer(t, srv)
	ls, _, _ := run(t, bin, "ls", "--root", root, "--json", "a/x")
	var l refcount.ListReport
	if err := json.Unmarshal([]byte(ls), &l); err != nil || len(l.Tags) != 1 {
		t.Fatalf("ls a/x: %v\n%s", err, ls)
	}
	p = dryRunThenRm(t, bin, root, "a/x@"+l.Tags[0].Digest, "offline")
	if len(p.Manifests) != 1 || !reflect.DeepEqual(p.Tags, []string{"a/x:v2"}) {
		t.Fatalf("plan of a/x by digest: %+v", p)
	}
	p = dryRunThenRm(t, bin, root, "a/z:v1", "offline")
	if !freesBlob(p, digest.FromBytes(baseLayer)) {
		t.Fatalf("the last image's plan leaves out the base layer: %+v", p)
	}
	if _, _, code := run(t, bin, "fsck", "--root", root, "--deep"); code != 0 {
		t.Fatal("fsck after the removals")
	}
}

// freesBlob reports whether a plan frees d.
func freesBlob(p *refcount.RemoveReport, d digest.Digest) bool {
	for _, b := range p.Blobs {
		if b.Digest == string(d) {
			return true
		}
	}
	return false
}
