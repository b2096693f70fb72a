package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
)

// startKvreg serves a fresh kvreg data directory in process.
func startKvreg(t testing.TB) (url, root string) {
	t.Helper()
	root = t.TempDir()
	// KVREG_BENCH_BLOB_STORE (an s3:// URL, credentials from the
	// environment) profiles kvreg with its blobs in that bucket, and
	// KVREG_BENCH_DB (a postgres:// URL of an empty database) with its
	// metadata there; both together, as one of several replicas.
	db, bs := os.Getenv("KVREG_BENCH_DB"), os.Getenv("KVREG_BENCH_BLOB_STORE")
	replica := kv.IsURL(db) && bs != ""
	reg, err := refcount.OpenStores(root, db, bs, kv.Options{Replica: replica}, refcount.Options{Shared: replica})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(reg, api.Config{}))
	t.Cleanup(func() {
		srv.Close()
		reg.Close()
	})
	return srv.URL, root
}

func tinyConfig(url, root string) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.Name, cfg.DataDir = url, "kvreg", root
	cfg.Images, cfg.Repos, cfg.Clients, cfg.Jobs = 8, 2, 3, 2
	cfg.BaseLayers, cfg.BaseSize = 2, 64<<10
	cfg.UniqueLayers, cfg.UniqueSize = 2, 16<<10
	cfg.ListFor, cfg.HeadFor = 200*time.Millisecond, 300*time.Millisecond
	cfg.LargeMB = 3
	cfg.ReclaimTimeout = 10 * time.Second
	cfg.PID = os.Getpid()
	return cfg
}

// TestRunAgainstKvreg runs a tiny workload against an in-process kvreg
// through the command line, and checks every figure is there and sane.
func TestRunAgainstKvreg(t *testing.T) {
	url, root := startKvreg(t)
	cfg := tinyConfig(url, root)
	var out, errb bytes.Buffer
	args := []string{"-url", url, "-name", "kvreg", "-data-dir", root,
		"-images", "8", "-repos", "2", "-clients", "3", "-jobs", "2",
		"-base-layers", "2", "-base-size", "65536", "-unique-layers", "2", "-unique-size", "16384",
		"-list-seconds", "200ms", "-head-seconds", "300ms", "-large-mb", "3", "-large-pulls", "2", "-reclaim-timeout", "10s",
		"-dd-file", filepath.Join(t.TempDir(), "dd"),
		"-pid", strconv.Itoa(os.Getpid()), "-cpu", "registry=" + strconv.Itoa(os.Getpid())}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line of JSON, got %d: %s", len(lines), out.String())
	}
	var r Result
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Workload.Images != cfg.Images || r.Workload.Seed != 1 {
		t.Errorf("workload not echoed: %+v", r.Workload)
	}
	// The server is in process: the registry's group and the load tool's
	// are one process, read at the same moments.
	for _, phase := range []string{"push", "pull", "head"} {
		byGroup := r.CPUSeconds[phase]
		reg, rok := byGroup["registry"]
		tool, tok := byGroup["load tool"]
		if !rok || !tok || reg != tool || reg < 0 || len(byGroup) != 2 {
			t.Errorf("cpu of the %s phase: %v, want the same figure for registry and load tool", phase, byGroup)
		}
	}
	positive := map[string]float64{
		"push_images_per_s": r.PushImagesPerS, "push_mb_per_s": r.PushMBPerS,
		"pull_mb_per_s": r.PullMBPerS, "list_requests_per_s": r.ListRequestsPerS,
		"head_requests_per_s": r.HeadRequestsPerS, "large_push_mb_per_s": r.LargePushMBPerS,
		"large_pull_mb_per_s": r.LargePullMBPerS, "rss_kb": float64(r.RSSKB),
		"dd_before_mb_per_s": r.DDBeforeMBPerS, "dd_after_mb_per_s": r.DDAfterMBPerS,
	}
	for k, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	// 8 images: 2 shared layers of 64 KiB, 2 of their own of 16 KiB each.
	if want := int64(2*2*64<<10 + 8*2*16<<10); r.PushBytes < want {
		t.Errorf("push_bytes = %d, want at least %d (layers) plus configs", r.PushBytes, want)
	}
	if want := int64(8 * (2*64<<10 + 2*16<<10)); r.PullBytes < want {
		t.Errorf("pull_bytes = %d, want at least %d", r.PullBytes, want)
	}
	if r.LargeBytes != 3<<20 {
		t.Errorf("large_bytes = %d", r.LargeBytes)
	}
	if len(r.LargePullsMBPerS) != 2 || r.Workload.LargePulls != 2 {
		t.Errorf("large pulls: %d figures, workload says %d; want 2", len(r.LargePullsMBPerS), r.Workload.LargePulls)
	}
	if r.DeletedImages != 4 {
		t.Errorf("deleted_images = %d, want 4", r.DeletedImages)
	}
	if r.ReclaimSeconds == nil || r.ReclaimedBytes == nil || r.ReclaimTimedOut {
		t.Fatalf("reclaim not measured: %s", lines[0])
	}
	if *r.ReclaimedBytes < r.ReclaimExpectedBytes || r.ReclaimExpectedBytes < 4*2*16<<10 {
		t.Errorf("reclaimed %d bytes, expected %d", *r.ReclaimedBytes, r.ReclaimExpectedBytes)
	}
	// kvreg frees before it answers: the first look after the DELETEs
	// finds the bytes gone.
	if *r.ReclaimSeconds > r.DeleteSeconds+2 {
		t.Errorf("reclaim took %.3fs after DELETEs that took %.3fs", *r.ReclaimSeconds, r.DeleteSeconds)
	}
	if !r.VerifyOK || len(r.Errors) > 0 {
		t.Errorf("verify %v %q, errors %v", r.VerifyOK, r.VerifyError, r.Errors)
	}
	// kvreg's own files agree: only the kept images' blobs and the large one.
	bs, err := blobs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bs.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	// 2 bases + 4 kept images x (config + 2 layers) + large layer + its config
	if want := 2 + 4*3 + 2; len(st) != want {
		t.Errorf("%d blobs left, want %d", len(st), want)
	}

	// The comparison table reads two results.
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	os.WriteFile(a, []byte(lines[0]), 0o644)
	os.WriteFile(b, []byte(lines[0]), 0o644)
	out.Reset()
	if code := run([]string{"-compare", a + "," + a + "," + b, "-against", b, "-ref-name", "ref", "-dd-mb-per-s", "100"}, &out, &errb); code != 0 {
		t.Fatalf("compare: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"| figure | kvreg | ref |", "push, images/s", "1.00x", "% of that dd", "% of a separate dd run", "median of 3 runs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDeterministic: the same seed pushes the same images.
func TestDeterministic(t *testing.T) {
	gen := func(seed uint64) []string {
		cfg := tinyConfig("http://127.0.0.1:1", "")
		cfg.Seed = seed
		b := &bench{cfg: cfg, repoBlob: map[string]map[v1.Hash]int64{}}
		if err := b.generate(); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, im := range b.images {
			out = append(out, im.repo+":"+im.tag+"@"+im.digest.String())
		}
		return out
	}
	a, b, c := gen(1), gen(1), gen(2)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Error("same seed, different images")
	}
	if a[0] == c[0] {
		t.Error("different seeds, same image")
	}
	l, err := newGenLayer(1, 3<<20+5)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, l.reader())
	if err != nil || n != 3<<20+5 {
		t.Fatalf("generated layer: %d bytes, %v", n, err)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:5000", "http://example.com:5000", "https://127.0.0.1:5000",
		"http://192.168.1.2:80", "http://127.0.0.1", "127.0.0.1:5000", "http://127.0.0.1:5000/v2/x"} {
		if _, err := CheckURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
		if _, err := Run(context.Background(), Config{URL: u}); err == nil {
			t.Errorf("Run(%s) ran", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000", "http://127.0.0.2:5000/"} {
		if _, err := CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}

func TestReadMemory(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m["VmRSS"] <= 0 || m["VmHWM"] < m["VmRSS"] {
		t.Errorf("memory figures: %v", m)
	}
}
