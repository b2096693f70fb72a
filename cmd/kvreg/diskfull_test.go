package main

// kvreg on a filesystem too small for an upload: the upload is refused with
// a 4xx, never a 5xx, its bytes are removed and nothing else is harmed: the
// registry keeps serving what it holds and keeps accepting pushes that fit,
// and fsck is clean.
// Needs root for mount; skipped without it unless CI=true.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// smallFilesystem mounts a filesystem of about sizeMB at a new directory
// until the test ends: tmpfs, or else ext4 on a loop device.
func smallFilesystem(t *testing.T, sizeMB int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMB), "tmpfs", dir).CombinedOutput()
	if err == nil {
		t.Cleanup(func() { unmount(t, dir) })
		return dir
	}
	reasons = append(reasons, fmt.Sprintf("tmpfs: %v %s", err, bytes.TrimSpace(out)))
	img := filepath.Join(t.TempDir(), "fs.img")
	for _, args := range [][]string{
		{"truncate", "-s", fmt.Sprintf("%dM", sizeMB), img},
		{"mkfs.ext4", "-q", "-F", img},
		{"mount", "-o", "loop", img, dir},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v %s", args[0], err, bytes.TrimSpace(out)))
			msg := "no small filesystem to fill: " + strings.Join(reasons, "; ")
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v %s", dir, err, out)
		exec.Command("umount", "-l", dir).Run()
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type dfResp struct {
	status int
	header http.Header
	body   string
	err    error
}

func dfDo(method, url, ct string, body io.Reader, length int64) dfResp {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return dfResp{err: err}
	}
	if body != nil {
		req.ContentLength = length
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return dfResp{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return dfResp{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// dfImage is a small image: its manifest and its blobs by digest.
type dfImage struct {
	manifest []byte
	blobs    map[string][]byte
}

func newDFImage(rng *rand.Rand, layerSize int) dfImage {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","seed":%d}`, rng.Int63()))
	layer := make([]byte, layerSize)
	rng.Read(layer)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		refcount.MediaTypeOCIManifest, sha(cfg), len(cfg), sha(layer), len(layer))
	return dfImage{manifest: []byte(m), blobs: map[string][]byte{sha(cfg): cfg, sha(layer): layer}}
}

func (img dfImage) push(base, repo, tag string) error {
	for d, b := range img.blobs {
		r := dfDo(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(b), int64(len(b)))
		if r.err != nil || r.status != http.StatusCreated {
			return fmt.Errorf("blob upload: %d %v %s", r.status, r.err, r.body)
		}
	}
	r := dfDo(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, refcount.MediaTypeOCIManifest, bytes.NewReader(img.manifest), int64(len(img.manifest)))
	if r.err != nil || r.status != http.StatusCreated {
		return fmt.Errorf("manifest put: %d %v %s", r.status, r.err, r.body)
	}
	return nil
}

func (img dfImage) pull(base, repo, tag string) error {
	r := dfDo(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, "", nil, 0)
	if r.err != nil || r.status != http.StatusOK || r.body != string(img.manifest) {
		return fmt.Errorf("manifest: %d %v", r.status, r.err)
	}
	for d := range img.blobs {
		r := dfDo(http.MethodGet, base+"/v2/"+repo+"/blobs/"+d, "", nil, 0)
		if r.err != nil || r.status != http.StatusOK || sha([]byte(r.body)) != d {
			return fmt.Errorf("blob %s: %d %v", d, r.status, r.err)
		}
	}
	return nil
}

func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root to mount a small filesystem")
	}
	bin := buildKvreg(t)
	mnt := smallFilesystem(t, 24)
	root := filepath.Join(mnt, "data")
	srv := startServer(t, bin, root)
	base := "http://" + srv.Addr
	rng := rand.New(rand.NewSource(24))

	small := newDFImage(rng, 256<<10)
	if err := small.push(base, "app/small", "v1"); err != nil {
		t.Fatalf("a small push on an empty filesystem: %v", err)
	}
	if err := small.pull(base, "app/small", "v1"); err != nil {
		t.Fatal(err)
	}
	free := freeBytes(t, mnt)
	t.Logf("%d MiB free after the small push", free>>20)

	// afterRefusal: the refused upload left nothing, the space came back,
	// the small image still pulls and a new small push fits.
	afterRefusal := func(what string, n int) {
		t.Helper()
		if ups := uploadDirs(t, root); len(ups) != 0 {
			t.Errorf("%s: upload left under %s/uploads: %v", what, root, ups)
		}
		if now := freeBytes(t, mnt); now < free-(1<<20) {
			t.Errorf("%s: %d MiB free, %d MiB before: the upload's bytes are still on disk", what, now>>20, free>>20)
		}
		if err := small.pull(base, "app/small", "v1"); err != nil {
			t.Errorf("%s: the small image no longer pulls: %v", what, err)
		}
		another := newDFImage(rng, 128<<10)
		tag := fmt.Sprint("after", n)
		if err := another.push(base, "app/small", tag); err != nil {
			t.Errorf("%s: a small push no longer fits: %v", what, err)
		} else if err := another.pull(base, "app/small", tag); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	big := make([]byte, 40<<20)
	rng.Read(big)
	bigDigest := sha(big)

	t.Run("monolithic", func(t *testing.T) {
		r := dfDo(http.MethodPost, base+"/v2/app/big/blobs/uploads/?digest="+bigDigest, "application/octet-stream", bytes.NewReader(big), int64(len(big)))
		t.Logf("40 MiB monolithic upload onto 24 MiB: status %d %v %s", r.status, r.err, r.body)
		switch {
		case r.err != nil:
			t.Errorf("no answer, the connection failed: %v", r.err)
		case r.status >= 500:
			t.Errorf("answered %d %s: a disk that fills up must be a 4xx", r.status, r.body)
		case r.status < 400:
			t.Fatalf("answered %d to an upload that cannot fit", r.status)
		}
		if h := dfDo(http.MethodHead, base+"/v2/app/big/blobs/"+bigDigest, "", nil, 0); h.status != http.StatusNotFound {
			t.Errorf("HEAD of the refused blob: %d", h.status)
		}
		afterRefusal("monolithic", 1)
	})

	t.Run("chunked", func(t *testing.T) {
		r := dfDo(http.MethodPost, base+"/v2/app/big/blobs/uploads/", "", nil, 0)
		if r.status != http.StatusAccepted {
			t.Fatalf("start upload: %d %v %s", r.status, r.err, r.body)
		}
		loc := base + r.header.Get("Location")
		const chunk = 4 << 20
		var refused dfResp
		off := 0
		for off < len(big) { // at most 10 chunks
			end := min(off+chunk, len(big))
			h := dfDo(http.MethodPatch, loc, "application/octet-stream", bytes.NewReader(big[off:end]), int64(end-off))
			if h.err != nil || h.status != http.StatusAccepted {
				refused = h
				break
			}
			off = end
		}
		t.Logf("chunked upload: %d MiB accepted, then status %d %v %s", off>>20, refused.status, refused.err, refused.body)
		switch {
		case off >= len(big):
			t.Fatal("every chunk of 40 MiB was accepted onto 24 MiB")
		case refused.err != nil:
			t.Errorf("no answer to the chunk that did not fit, the connection failed: %v", refused.err)
		case refused.status >= 500:
			t.Errorf("answered %d %s to the chunk that did not fit: a disk that fills up must be a 4xx", refused.status, refused.body)
		}
		// The upload is discarded, not left holding the disk.
		if st := dfDo(http.MethodGet, loc, "", nil, 0); st.status != http.StatusNotFound {
			t.Errorf("the upload that filled the disk is still there: status %d, Range %q", st.status, st.header.Get("Range"))
			// A client would cancel it; do so, so that the rest can be judged.
			dfDo(http.MethodDelete, loc, "", nil, 0)
		}
		afterRefusal("chunked", 2)
	})

	// A manifest that the database has no room to commit: its blobs are
	// in, then a filler takes the rest of the disk. The write is refused
	// with a 4xx saying nothing was stored, and goes through once there is
	// room again.
	t.Run("manifest", func(t *testing.T) {
		img := newDFImage(rng, 64<<10)
		for d, b := range img.blobs {
			r := dfDo(http.MethodPost, base+"/v2/app/meta/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(b), int64(len(b)))
			if r.err != nil || r.status != http.StatusCreated {
				t.Fatalf("blob upload: %d %v %s", r.status, r.err, r.body)
			}
		}
		// Annotations make the manifest larger than any free page the
		// database file still has.
		pad := strings.Repeat("x", 3<<20)
		m := strings.TrimSuffix(string(img.manifest), "}") + `,"annotations":{"pad":"` + pad + `"}}`
		filler := filepath.Join(mnt, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
		for { // the last few pages
			if _, err := f.Write(buf[:4096]); err != nil {
				break
			}
		}
		f.Close()
		r := dfDo(http.MethodPut, base+"/v2/app/meta/manifests/v1", refcount.MediaTypeOCIManifest, strings.NewReader(m), int64(len(m)))
		t.Logf("manifest put on a full disk: status %d %v %s", r.status, r.err, r.body)
		switch {
		case r.err != nil:
			t.Errorf("no answer, the connection failed: %v", r.err)
		case r.status < 400 || r.status >= 500:
			t.Errorf("answered %d %s: a disk that fills up must be a 4xx", r.status, r.body)
		case !strings.Contains(r.body, "nothing was stored"):
			t.Errorf("answer %s does not say that nothing was stored", r.body)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if g := dfDo(http.MethodGet, base+"/v2/app/meta/manifests/v1", "", nil, 0); g.status != http.StatusNotFound {
			t.Errorf("the refused manifest answers %d", g.status)
		}
		r = dfDo(http.MethodPut, base+"/v2/app/meta/manifests/v1", refcount.MediaTypeOCIManifest, strings.NewReader(m), int64(len(m)))
		if r.err != nil || r.status != http.StatusCreated {
			t.Errorf("the manifest once there is room: %d %v %s", r.status, r.err, r.body)
		}
	})

	// Nothing else harmed: fsck, with the server stopped, is clean.
	stopServer(t, srv)
	out, errOut, code := run(t, bin, "fsck", "--root", root, "--deep")
	if code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("fsck after the disk filled: exit %d\n%s%s", code, out, errOut)
	}
}
