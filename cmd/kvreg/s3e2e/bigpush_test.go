package s3e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// bigSize is the monolithic push's size: far more than kvreg may hold in
// memory, so that only streaming keeps its RSS under maxRSS.
const (
	bigSize = 1 << 30
	maxRSS  = 100 << 20
)

// generator yields n deterministic bytes, the same for every generator of
// one seed, without holding them.
type generator struct {
	rng *rand.ChaCha8
	n   int64
}

func newGenerator(seed byte, n int64) *generator {
	return &generator{rng: rand.NewChaCha8([32]byte{seed}), n: n}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	g.rng.Read(p)
	g.n -= int64(len(p))
	return len(p), nil
}

// A 1 GiB blob pushed to kvreg on S3 in one PUT, streamed from a generator,
// pulls back with the same sha256, while kvreg's peak RSS stays under
// maxRSS: the bytes stream to S3 in parts of the driver's default size and
// back, and are never held whole.
func TestMonolithicGiBOnS3(t *testing.T) {
	r := newS3Registry(t)
	began := time.Now()
	h := sha256.New()
	if _, err := io.Copy(h, newGenerator(1, bigSize)); err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigest(digest.SHA256, h)

	resp, _ := expect(t, "POST", r.do(http.MethodPost, "/v2/team/big/blobs/uploads/", nil, nil, 0), http.StatusAccepted)
	loc := resp.Header.Get("Location")
	start := time.Now()
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	expect(t, "PUT", r.do(http.MethodPut, loc+"?digest="+d.String(), hdr, newGenerator(1, bigSize), bigSize), http.StatusCreated)
	push := time.Since(start)

	r.pushManifest("team/big", "v1", []byte(`{"architecture":"amd64","os":"linux"}`), layerRef{d.String(), bigSize})
	start = time.Now()
	resp = r.do(http.MethodGet, "/v2/team/big/blobs/"+d.String(), nil, nil, 0)
	if resp.StatusCode != http.StatusOK {
		expect(t, "GET", resp, http.StatusOK)
	}
	h.Reset()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != bigSize {
		t.Fatalf("GET: %d bytes, %v", n, err)
	}
	pull := time.Since(start)
	if got := digest.NewDigest(digest.SHA256, h); got != d {
		t.Fatalf("pulled %s, pushed %s", got, d)
	}
	peak := peakRSS(t, r.s.Pid())
	t.Logf("1 GiB: push %v (%.0f MiB/s), pull %v (%.0f MiB/s), kvreg peak RSS %.1f MiB; %v in all",
		push.Round(time.Millisecond), float64(bigSize)/mib/push.Seconds(), pull.Round(time.Millisecond), float64(bigSize)/mib/pull.Seconds(),
		float64(peak)/mib, time.Since(began).Round(time.Millisecond))
	if peak >= maxRSS {
		t.Fatalf("kvreg's peak RSS was %d MiB, over %d MiB", peak/mib, maxRSS/mib)
	}
}

// peakRSS is a process's peak resident set size (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM: %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status: %v", pid, sc.Err())
	return 0
}
