package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// run runs a kvreg command and returns stdout, stderr and the exit code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kvreg %v hung", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// push uploads an image of one random layer plus a shared base as repo:tag.
func push(base string, repo, tag string, layer, baseLayer []byte) error {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","image":%q}`, repo+":"+tag))
	for _, b := range [][]byte{cfg, layer, baseLayer} {
		u := fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, digest.FromBytes(b))
		resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("blob upload: %s", resp.Status)
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		refcount.MediaTypeOCIManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(baseLayer), len(baseLayer), digest.FromBytes(layer), len(layer))
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, tag), strings.NewReader(m))
	req.Header.Set("Content-Type", refcount.MediaTypeOCIManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("manifest put: %s", resp.Status)
	}
	return nil
}

func TestOperatorCommandsOnlineDuringPushesAndOffline(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	srv := startServer(t, bin, root)
	base := "http://" + srv.Addr

	rnd := rand.New(rand.NewSource(7))
	baseLayer := make([]byte, 64<<10)
	rnd.Read(baseLayer)
	const workers, perWorker = 3, 15
	layers := make([][][]byte, workers)
	for w := range layers {
		for i := 0; i < perWorker; i++ {
			l := make([]byte, 32<<10+rnd.Intn(32<<10))
			rnd.Read(l)
			layers[w] = append(layers[w], l)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if err := push(base, fmt.Sprintf("team/app%d", w), fmt.Sprintf("v%d", i), layers[w][i], baseLayer); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}

	// While the pushes run: every command answers, online.
	pushing := make(chan struct{})
	go func() { wg.Wait(); close(pushing) }()
	rounds := 0
	for done := false; !done && rounds < 200; rounds++ {
		select {
		case <-pushing:
			done = true
		default:
		}
		for _, args := range [][]string{
			{"stats", "--root", root, "--json"},
			{"ls", "--root", root},
			{"fsck", "--root", root},
		} {
			out, errOut, code := run(t, bin, args...)
			if code != 0 {
				t.Fatalf("kvreg %v: exit %d\n%s%s", args, code, out, errOut)
			}
			if !strings.Contains(errOut, "online") {
				t.Fatalf("kvreg %v did not say it went through the server: %q", args, errOut)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d rounds of stats, ls and fsck during %d pushes", rounds, workers*perWorker)

	// Figures after the pushes: what was pushed is counted.
	out, _, code := run(t, bin, "stats", "--root", root, "--json")
	if code != 0 {
		t.Fatalf("stats: %d", code)
	}
	var st refcount.StatsReport
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Totals.Repos != workers || st.Totals.Tags != workers*perWorker || st.Totals.Manifests != workers*perWorker {
		t.Fatalf("stats totals %+v", st.Totals)
	}
	// The shared base layer is one blob referenced by every image.
	if st.Totals.SharedBytes != int64(len(baseLayer)) {
		t.Fatalf("shared bytes %d, want %d", st.Totals.SharedBytes, len(baseLayer))
	}

	// ls of a repository lists its tags with digests.
	out, _, _ = run(t, bin, "ls", "--root", root, "team/app0")
	if strings.Count(out, "sha256:") != perWorker || !strings.Contains(out, "v14") {
		t.Fatalf("ls team/app0:\n%s", out)
	}

	// rm a tag online: its unique layer's bytes come back at once.
	uniq := layers[1][3]
	uniqD := digest.FromBytes(uniq)
	if !blobStored(t, root, uniqD) {
		t.Fatalf("layer %s not stored", uniqD)
	}
	out, errOut, code := run(t, bin, "rm", "--root", root, "--json", "team/app1:v3")
	if code != 0 || !strings.Contains(errOut, "online") {
		t.Fatalf("rm: %d %s %s", code, out, errOut)
	}
	var rm refcount.RemoveReport
	json.Unmarshal([]byte(out), &rm)
	if rm.ReclaimedBytes < int64(len(uniq)) {
		t.Fatalf("rm reclaimed %d bytes, want at least %d", rm.ReclaimedBytes, len(uniq))
	}
	if blobStored(t, root, uniqD) {
		t.Fatal("layer still stored after rm")
	}
	// rm a whole repository online.
	if _, errOut, code := run(t, bin, "rm", "--root", root, "team/app2"); code != 0 {
		t.Fatalf("rm repo: %d %s", code, errOut)
	}
	resp, err := http.Get(base + "/v2/team/app2/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removed repository answers %s", resp.Status)
	}
	if _, errOut, code := run(t, bin, "rm", "--root", root, "team/nope:v1"); code == 0 {
		t.Fatalf("rm of an unknown tag succeeded: %s", errOut)
	}

	onlineStats, _, _ := run(t, bin, "stats", "--root", root, "--json")

	// Offline: the same answers from the data directory itself.
	stopServer(t, srv)
	out, errOut, code = run(t, bin, "fsck", "--root", root, "--deep")
	if code != 0 || !strings.Contains(errOut, "offline") || !strings.Contains(out, "clean") {
		t.Fatalf("offline fsck: exit %d\n%s%s", code, out, errOut)
	}
	offlineStats, _, _ := run(t, bin, "stats", "--root", root, "--json")
	var on, off refcount.StatsReport
	json.Unmarshal([]byte(onlineStats), &on)
	json.Unmarshal([]byte(offlineStats), &off)
	if on.Totals != off.Totals || on.Totals.Tags != 2*perWorker-1 {
		t.Fatalf("online %+v, offline %+v", on.Totals, off.Totals)
	}
	out, _, code = run(t, bin, "rm", "--root", root, "team/app0:v0")
	if code != 0 || !strings.Contains(out, "reclaimed") {
		t.Fatalf("offline rm: %d %s", code, out)
	}
	if _, _, code := run(t, bin, "fsck", "--root", root); code != 0 {
		t.Fatal("fsck after offline rm")
	}
}

func TestCommandsRefuseALockedStoreQuickly(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	srv := startServer(t, bin, root)
	// A server whose socket is gone: the database is locked and nobody answers.
	os.Remove(filepath.Join(root, "kvreg.sock"))
	start := time.Now()
	_, errOut, code := run(t, bin, "stats", "--root", root)
	if code != 2 || !strings.Contains(errOut, "held by another process") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
	stopServer(t, srv)
	if _, errOut, code := run(t, bin, "fsck", "--root", filepath.Join(root, "missing")); code != 2 {
		t.Fatalf("fsck of a missing directory: %d %s", code, errOut)
	}
}
