package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
)

const retentionYAML = `
immutable:
  - repos: ["prod/*"]
    tags: ["v*", "release-*"]
retention:
  - repos: ["ci/*"]
    keep-last: 10
    keep-pulled-within: 720h
    keep-tags: ["latest", "release-*"]
`

// The immutable and retention sections reach the registry's options as a
// policy.Set; a bad rule stops kvreg serve with a message naming it.
func TestRetentionConfig(t *testing.T) {
	cfg, err := resolve(t, "--config", writeFile(t, "c.yaml", retentionYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.Set{
		Immutables: []policy.Immutable{{Repos: []string{"prod/*"}, Tags: []string{"v*", "release-*"}}},
		Retentions: []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 10, KeepPulledWithin: 720 * time.Hour, KeepTags: []string{"latest", "release-*"}}},
	}
	if !reflect.DeepEqual(cfg.policies, want) {
		t.Fatalf("policies %+v, want %+v", cfg.policies, want)
	}
	if cfg, err := resolve(t); err != nil || cfg.policies != nil {
		t.Fatalf("no file: %+v %v", cfg.policies, err)
	}
	for _, c := range []struct{ yaml, want string }{
		{"retention:\n  - repos: [\"ci/*\"]\n    keep-last: -1\n", "retention rule 1: keep-last -1 is negative"},
		{"retention:\n  - repos: [\"ci/*\"]\n    keep-first: 3\n", "keep-first"},
		{"retention:\n  - repos: [\"ci/*\"]\n    keep-pulled-within: 30 days\n", "line 3: cannot unmarshal"},
		{"immutable:\n  - repos: [\"Prod/*\"]\n    tags: [\"v*\"]\n", "immutable rule 1"},
	} {
		_, err := resolve(t, "--config", writeFile(t, "bad.yaml", c.yaml))
		if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a configuration error saying %q", c.yaml, err, c.want)
		}
	}
}

// retentionPlan runs kvreg retention plan --json with args.
func retentionPlan(t *testing.T, bin string, args ...string) (*refcount.RetentionReport, string) {
	t.Helper()
	out, errOut, code := run(t, bin, append([]string{"retention", "plan", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("kvreg retention plan %v: exit %d\n%s%s", args, code, out, errOut)
	}
	var rep refcount.RetentionReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kvreg retention plan: %v\n%s", err, out)
	}
	return &rep, errOut
}

func blobBytes(t *testing.T, bin, root string) int64 {
	t.Helper()
	out, _, code := run(t, bin, "stats", "--root", root, "--json")
	var s refcount.StatsReport
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
		t.Fatalf("stats: exit %d, %v\n%s", code, err, out)
	}
	return s.Totals.BlobBytes
}

// Twelve tags pushed with no rule; then kvreg retention plan, offline with
// --config, names the two a keep-10 rule removes and the bytes; a server
// started with that rule sweeps at startup, and the store shrinks by
// exactly what the plan said.
func TestRetentionPlanCommand(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	conf := writeFile(t, "c.yaml", "retention:\n  - repos: [\"ci/*\"]\n    keep-last: 10\n")
	srv := startServer(t, bin, root)
	rnd := rand.New(rand.NewSource(12))
	base := make([]byte, 8<<10)
	rnd.Read(base)
	for i := 1; i <= 12; i++ {
		l := make([]byte, 4<<10+i)
		rnd.Read(l)
		if err := push("http://"+srv.Addr, "ci/app", fmt.Sprintf("t%02d", i), l, base); err != nil {
			t.Fatal(err)
		}
	}
	// Online, the server has no rule: nothing to remove.
	if p, errOut := retentionPlan(t, bin, "--root", root); len(p.Tags) != 0 || !strings.Contains(errOut, "online") {
		t.Fatalf("online plan without rules: %+v (%s)", p, errOut)
	}
	stopServer(t, srv)
	plan, errOut := retentionPlan(t, bin, "--root", root, "--config", conf)
	if !strings.Contains(errOut, "offline") || !reflect.DeepEqual(plan.Tags, []string{"ci/app:t01", "ci/app:t02"}) ||
		len(plan.Blobs) != 4 || plan.ReclaimedBytes <= 2*(4<<10) {
		t.Fatalf("offline plan: %+v (%s)", plan, errOut)
	}
	out, _, code := run(t, bin, "retention", "plan", "--root", root, "--config", conf)
	words := fmt.Sprintf("ci/app:t01\nci/app:t02\nretention would remove 2 tags, 2 manifests, 4 blobs; %d bytes (%s) would be reclaimed\n", plan.ReclaimedBytes, refcount.HumanBytes(plan.ReclaimedBytes))
	if code != 0 || out != words {
		t.Fatalf("retention plan printed %q, want %q", out, words)
	}
	before := blobBytes(t, bin, root)
	srv = startServer(t, bin, root, "--config", conf)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, _ := retentionPlan(t, bin, "--root", root)
		if len(p.Tags) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the startup sweep did not run: the plan still says %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopServer(t, srv)
	if shrunk := before - blobBytes(t, bin, root); shrunk != plan.ReclaimedBytes {
		t.Fatalf("the store shrank by %d, the plan said %d", shrunk, plan.ReclaimedBytes)
	}
	if _, _, code := run(t, bin, "fsck", "--root", root, "--deep"); code != 0 {
		t.Fatal("fsck after the sweep")
	}
}
