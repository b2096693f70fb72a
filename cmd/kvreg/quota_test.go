package main

import (
	"encoding/json"
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
)

// The quotas section reaches the registry's options, sizes with units; a
// bad rule stops kvreg serve with a message naming it.
func TestQuotaConfig(t *testing.T) {
	cfg, err := resolve(t, "--config", writeFile(t, "c.yaml", `
quotas:
  - repos: ["team-a/*", "shared/a"]
    max-bytes: 10GiB
    max-tags: 500
  - repos: ["team-b/*"]
    max-bytes: 1500
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Quota{
		{Repos: []string{"team-a/*", "shared/a"}, MaxBytes: 10 << 30, MaxTags: 500},
		{Repos: []string{"team-b/*"}, MaxBytes: 1500},
	}
	if cfg.policies == nil || !reflect.DeepEqual(cfg.policies.Quotas, want) {
		t.Fatalf("policies %+v, want quotas %+v", cfg.policies, want)
	}
	for _, c := range []struct{ yaml, want string }{
		{"quotas:\n  - repos: [\"a/*\"]\n    max-bytes: -1GiB\n", "negative"},
		{"quotas:\n  - repos: [\"a/*\"]\n    max-bytes: ten\n", "a number of bytes"},
		{"quotas:\n  - repos: [\"a/*\"]\n    max-tags: -2\n", "quota rule 1: max-tags -2 is negative"},
		{"quotas:\n  - max-tags: 2\n", "quota rule 1: no repos"},
		{"quotas:\n  - repos: [\"a/*\"]\n    max-blobs: 2\n", "max-blobs"},
	} {
		_, err := resolve(t, "--config", writeFile(t, "bad.yaml", c.yaml))
		if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a configuration error saying %q", c.yaml, err, c.want)
		}
	}
}

func quotaStats(t *testing.T, bin, root string) *refcount.StatsReport {
	t.Helper()
	out, errOut, code := run(t, bin, "stats", "--root", root, "--json")
	var s refcount.StatsReport
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
		t.Fatalf("stats: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	return &s
}

// A server with a quota: an image sharing its base with one in the
// namespace fits where a whole one would not, a push over it is refused,
// and kvreg stats shows the usage against the limits online and offline
// (the server recorded its rules), equal to what the namespace stores.
func TestQuotaStatsCommand(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	conf := writeFile(t, "c.yaml", "quotas:\n  - repos: [\"team/*\"]\n    max-bytes: 20KiB\n    max-tags: 5\n")
	srv := startServer(t, bin, root, "--config", conf)
	base := "http://" + srv.Addr
	rnd := rand.New(rand.NewSource(3))
	bytesOf := func(n int) []byte { b := make([]byte, n); rnd.Read(b); return b }
	baseLayer := bytesOf(8 << 10)
	if err := push(base, "team/one", "v1", bytesOf(4<<10), baseLayer); err != nil {
		t.Fatal(err)
	}
	// Alone 12 KiB and more: it fits only because its base is charged
	// already.
	if err := push(base, "team/two", "v1", bytesOf(4<<10), baseLayer); err != nil {
		t.Fatalf("an image sharing its base: %v", err)
	}
	if err := push(base, "team/two", "v2", bytesOf(8<<10), baseLayer); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a push over the quota: %v", err)
	}
	// Outside the namespace nothing is refused.
	if err := push(base, "other/x", "v1", bytesOf(30<<10), baseLayer); err != nil {
		t.Fatal(err)
	}
	online := quotaStats(t, bin, root)
	if len(online.Quotas) != 1 {
		t.Fatalf("online quotas %+v", online.Quotas)
	}
	q := online.Quotas[0]
	if q.Namespace != "team/*" || q.MaxBytes != 20<<10 || q.MaxTags != 5 || q.Tags != 2 || q.Bytes <= 16<<10 || q.Bytes > 20<<10 {
		t.Fatalf("online quota line %+v", q)
	}
	out, _, code := run(t, bin, "stats", "--root", root)
	if code != 0 || !strings.Contains(out, "QUOTA") || !strings.Contains(out, "team/*") || !strings.Contains(out, "20 KiB (") || !strings.Contains(out, "5 (40.0%)") {
		t.Fatalf("stats printed:\n%s", out)
	}
	t.Logf("kvreg stats:\n%s", out)
	stopServer(t, srv)
	offline := quotaStats(t, bin, root)
	if !reflect.DeepEqual(offline.Quotas, online.Quotas) {
		t.Fatalf("offline quotas %+v, online %+v", offline.Quotas, online.Quotas)
	}
	if _, _, code := run(t, bin, "fsck", "--root", root); code != 0 {
		t.Fatal("fsck with quotas")
	}
}
