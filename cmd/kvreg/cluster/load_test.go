package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// load is clients pushing images and deleting tags through haproxy while
// parts of the cluster fail under them. The workers share one repository
// and the layers of their images; each owns its tags, so the operations on
// one tag are in order, and connects from an address of its own, so that
// it is a client of its own (its HEADs and its uploads count for its own
// pushes, not another worker's, whose manifest and a deletion of every
// image holding a layer may come between its HEAD or upload and its
// manifest); every tag keeps what it may
// resolve to: certain after an acknowledged operation, one more
// possibility after one whose answer never came (the replica died, or
// haproxy answered 502/503/504 for it).
type load struct {
	c     *cluster
	repo  string   // the workers' repository
	bases [][]byte // small shared layers
	bigs  [][]byte // shared layers of several S3 parts

	mu       sync.Mutex
	images   map[string]image    // by manifest digest
	tags     map[string]tagState // repo:tag -> possible manifest digests ("" absent)
	statuses map[string]int      // "METHOD status" (or "METHOD cut") -> count
	errs     []string            // answers no failure excuses (a 500, a 4xx)
	acked    int
}

// tagState is what a tag may resolve to: manifest digests, "" for absent.
type tagState map[string]bool

func newLoad(c *cluster, repo string, rng *rand.Rand) *load {
	l := &load{c: c, repo: repo, images: map[string]image{}, tags: map[string]tagState{}, statuses: map[string]int{}}
	for _, n := range []int{4 << 10, 200 << 10, 1536 << 10} {
		l.bases = append(l.bases, randomBlob(rng, n).Data)
	}
	// 8 MiB parts: one and a bit, two and a bit.
	for _, n := range []int{mib(9), mib(17) + 12345} {
		l.bigs = append(l.bigs, randomBlob(rng, n).Data)
	}
	return l
}

func (l *load) possible(tag string) tagState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.tags[tag]
	if s == nil {
		s = tagState{"": true}
		l.tags[tag] = s
	}
	out := tagState{}
	for k := range s {
		out[k] = true
	}
	return out
}

// settle records an operation's outcome on a tag: certain when it was
// acknowledged, else one more possibility.
func (l *load) settle(tag, outcome string, acknowledged bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if acknowledged {
		l.tags[tag] = tagState{outcome: true}
		l.acked++
		return
	}
	l.tags[tag][outcome] = true
}

func (l *load) failf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

// answer is a response read whole, or the transport error that stood for it.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	replica string
	err     error
}

// cut: the answer does not say whether the operation happened: no
// answer, or haproxy's own 502/503/504 for a backend that failed or none
// left, or a replica's 503 (it could not reach a dependency).
func (a answer) cut() bool {
	return a.err != nil || a.status == http.StatusBadGateway || a.status == http.StatusServiceUnavailable || a.status == http.StatusGatewayTimeout
}

func (l *load) send(ctx context.Context, hc *http.Client, method, path string, hdr http.Header, body []byte) answer {
	if !strings.HasPrefix(path, "http") {
		path = l.c.lb.URL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	a := answer{err: err}
	if err == nil {
		a.status, a.header, a.replica = resp.StatusCode, resp.Header, resp.Header.Get(testenv.ReplicaHeader)
		a.body, a.err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	key := method + " cut"
	if a.err == nil {
		key = method + " " + strconv.Itoa(a.status)
	}
	l.mu.Lock()
	l.statuses[key]++
	l.mu.Unlock()
	if a.err == nil && a.status == http.StatusInternalServerError {
		l.failf("%s %s via %s: 500: %s", method, path, a.replica, a.body)
	}
	if a.err == nil && a.status == http.StatusServiceUnavailable && a.replica != "" && a.header.Get("Retry-After") == "" {
		l.failf("%s %s via %s: 503 without Retry-After: %s", method, path, a.replica, a.body)
	}
	if a.err == nil && a.status == http.StatusServiceUnavailable {
		time.Sleep(100 * time.Millisecond) // a client honouring Retry-After, roughly
	}
	return a
}

// makeImage is a new image: a unique config and layer, one or two
// shared small layers, and at times a shared big one.
func (l *load) makeImage(rng *rand.Rand) image {
	layers := []blob{newBlob(l.bases[rng.Intn(len(l.bases))]), randomBlob(rng, 8<<10+rng.Intn(56<<10))}
	if rng.Intn(2) == 0 {
		layers = append(layers, newBlob(l.bases[rng.Intn(len(l.bases))]))
	}
	if rng.Intn(3) == 0 {
		layers = append(layers, newBlob(l.bigs[rng.Intn(len(l.bigs))]))
	}
	seen := map[digest.Digest]bool{}
	var uniq []blob
	for _, b := range layers {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			uniq = append(uniq, b)
		}
	}
	img := newImage(newBlob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","nonce":%d}`, rng.Int63()))), uniq...)
	l.mu.Lock()
	l.images[img.Digest.String()] = img
	l.mu.Unlock()
	return img
}

// pushBlob uploads b unless a HEAD says it exists: monolithic (one POST,
// or POST then PUT), or in chunks with or without Content-Range. It
// reports whether the blob is there.
func (l *load) pushBlob(ctx context.Context, hc *http.Client, rng *rand.Rand, repo string, b blob) bool {
	base := "/v2/" + repo + "/blobs/"
	if h := l.send(ctx, hc, http.MethodHead, base+b.Digest.String(), nil, nil); h.err == nil && h.status == http.StatusOK {
		return true
	}
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	mode := rng.Intn(4)
	if len(b.Data) > mib(4) && mode == 0 {
		mode = 1
	}
	if mode == 0 {
		a := l.send(ctx, hc, http.MethodPost, base+"uploads/?digest="+b.Digest.String(), octet, b.Data)
		return l.expectStatus("POST monolithic", a, http.StatusCreated)
	}
	post := l.send(ctx, hc, http.MethodPost, base+"uploads/", nil, nil)
	if !l.expectStatus("POST upload", post, http.StatusAccepted) {
		return false
	}
	loc := post.header.Get("Location")
	if mode == 1 {
		put := l.send(ctx, hc, http.MethodPut, withDigest(loc, b.Digest), octet, b.Data)
		return l.expectStatus("PUT monolithic", put, http.StatusCreated)
	}
	chunk := mib(5) + rng.Intn(mib(3))
	if len(b.Data) < mib(4) {
		chunk = len(b.Data)/3 + 1
	}
	for at := 0; at < len(b.Data); {
		n := min(chunk, len(b.Data)-at)
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		if mode == 2 {
			hdr.Set("Content-Range", fmt.Sprintf("%d-%d", at, at+n-1))
		}
		p := l.send(ctx, hc, http.MethodPatch, loc, hdr, b.Data[at:at+n])
		if !l.expectStatus("PATCH", p, http.StatusAccepted) {
			return false
		}
		at += n
		loc = p.header.Get("Location")
	}
	put := l.send(ctx, hc, http.MethodPut, withDigest(loc, b.Digest), nil, nil)
	return l.expectStatus("PUT closing chunks", put, http.StatusCreated)
}

// expectStatus: a cut answer is no failure of kvreg (the caller gives
// up); any other answer than want is.
func (l *load) expectStatus(what string, a answer, want int) bool {
	if a.cut() {
		return false
	}
	if a.status != want {
		l.failf("%s via %s: %d, want %d: %s", what, a.replica, a.status, want, a.body)
		return false
	}
	return true
}

// worker pushes and deletes its tags until ctx ends.
func (l *load) worker(ctx context.Context, id int, rng *rand.Rand) {
	hc := clientFrom(fmt.Sprintf("127.0.0.%d", 10+id), 3*time.Minute)
	repo := l.repo
	for ctx.Err() == nil {
		name := fmt.Sprintf("w%d-%s", id, []string{"a", "b", "c"}[rng.Intn(3)])
		tag := repo + ":" + name
		cur := l.possible(tag)
		mpath := "/v2/" + repo + "/manifests/"
		switch op := rng.Intn(10); {
		case op < 6:
			img := l.makeImage(rng)
			ok := true
			for _, b := range img.blobs() {
				if ok = l.pushBlob(ctx, hc, rng, repo, b); !ok {
					break
				}
			}
			if !ok {
				continue // the tag did not change
			}
			a := l.send(ctx, hc, http.MethodPut, mpath+name, http.Header{"Content-Type": {mtManifest}}, img.Manifest)
			switch {
			case a.cut():
				l.settle(tag, img.Digest.String(), false)
			case a.status == http.StatusCreated:
				l.settle(tag, img.Digest.String(), true)
			default:
				l.failf("PUT manifest %s via %s: %d: %s", tag, a.replica, a.status, a.body)
			}
		default:
			ref := name
			if op == 9 && len(cur) == 1 && !cur[""] {
				for d := range cur {
					ref = d // by digest what the tag certainly names
				}
			}
			a := l.send(ctx, hc, http.MethodDelete, mpath+ref, nil, nil)
			switch {
			case a.cut():
				l.settle(tag, "", false)
			case a.status == http.StatusAccepted:
				l.settle(tag, "", true)
			case a.status == http.StatusNotFound && cur[""]:
				l.settle(tag, "", true)
			default:
				l.failf("DELETE %s via %s: %d (tag may be %v): %s", ref, a.replica, a.status, cur, a.body)
			}
		}
	}
}

// run starts n workers and returns a function that stops them and waits.
func (l *load) run(n int, seed int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		rng := rand.New(rand.NewSource(seed + int64(i)))
		wg.Go(func() { l.worker(ctx, i, rng) })
	}
	return func() { cancel(); wg.Wait() }
}

// check fails the test for the answers no failure excuses.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("%d wrong answers under load, first ones:\n%s", len(l.errs), strings.Join(l.errs, "\n"))
	}
}

// summary is the counts of answers, for the log.
func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.statuses))
	for k := range l.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d acknowledged tag operations;", l.acked)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s:%d", k, l.statuses[k])
	}
	return b.String()
}

// verify pulls every tag through haproxy: one whose last acknowledged
// operation was a push gives the manifest and blobs byte for byte, one
// deleted is gone; a tag whose last operation was cut off shows one of
// its possible outcomes.
func (l *load) verify(t *testing.T) (pulled int) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Minute}
	ctx := context.Background()
	l.mu.Lock()
	tags := make([]string, 0, len(l.tags))
	for k := range l.tags {
		tags = append(tags, k)
	}
	l.mu.Unlock()
	sort.Strings(tags)
	for _, tag := range tags {
		want := l.possible(tag)
		repo, name, _ := strings.Cut(tag, ":")
		m := l.send(ctx, hc, http.MethodGet, "/v2/"+repo+"/manifests/"+name, http.Header{"Accept": {mtManifest}}, nil)
		if m.err != nil {
			t.Fatalf("GET %s: %v", tag, m.err)
		}
		if m.status == http.StatusNotFound {
			if !want[""] {
				t.Fatalf("tag %s is gone, but its last acknowledged operation was a push (%v)", tag, want)
			}
			continue
		}
		if m.status != http.StatusOK {
			t.Fatalf("GET manifest %s via %s: %d: %s", tag, m.replica, m.status, m.body)
		}
		d := digest.FromBytes(m.body).String()
		if !want[d] {
			t.Fatalf("tag %s resolves to %s, expected one of %v", tag, d, want)
		}
		l.mu.Lock()
		img := l.images[d]
		l.mu.Unlock()
		if !bytes.Equal(img.Manifest, m.body) {
			t.Fatalf("tag %s: manifest bytes differ from those pushed", tag)
		}
		for _, b := range img.blobs() {
			g := l.send(ctx, hc, http.MethodGet, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
			if g.err != nil || g.status != http.StatusOK || !bytes.Equal(g.body, b.Data) {
				t.Fatalf("tag %s: blob %s (%d bytes) via %s: %d %v, %d bytes back", tag, b.Digest, len(b.Data), g.replica, g.status, g.err, len(g.body))
			}
		}
		pulled++
	}
	return pulled
}

// fsckReport is kvreg fsck --json's answer.
type fsckReport struct {
	Clean    bool
	Problems []refcount.Problem
	Pending  []refcount.Problem
}

// fsckJSON runs kvreg fsck --json over the cluster's database and bucket
// beside the running replicas.
func (c *cluster) fsckJSON(args ...string) (fsckReport, error) {
	args = append([]string{"fsck", "--json", "--root", c.t.TempDir(), "--db", c.db, "--blob-store", c.store}, args...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = os.Environ()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var rep fsckReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		return rep, fmt.Errorf("fsck: %v: %v\n%s%s", err, jerr, out.Bytes(), errOut.Bytes())
	}
	return rep, nil
}

// settled: no damage, and no half-done work left (a lease lapsed but not
// yet swept is no one's half-done work: every replica sweeps).
func (r fsckReport) settled() bool {
	if len(r.Problems) > 0 {
		return false
	}
	for _, p := range r.Pending {
		if p.Kind != refcount.ProblemLeaseExpired {
			return false
		}
	}
	return true
}

// waitClean polls fsck until it is settled or limit has passed since
// from, and returns how long after from it was.
func (c *cluster) waitClean(from time.Time, limit time.Duration) (time.Duration, fsckReport) {
	c.t.Helper()
	var last fsckReport
	var lastErr error
	seen := map[string]bool{}
	for {
		rep, err := c.fsckJSON()
		if err == nil && rep.settled() {
			if len(seen) > 0 {
				c.t.Logf("fsck saw meanwhile: %v", seen)
			}
			return time.Since(from), rep
		}
		for _, p := range append(rep.Problems, rep.Pending...) {
			seen[p.Kind] = true
		}
		last, lastErr = rep, err
		if time.Since(from) > limit {
			c.t.Fatalf("fsck not clean %v after the fault: %v\nproblems: %v\npending: %v", limit, lastErr, last.Problems, last.Pending)
		}
		time.Sleep(500 * time.Millisecond) // polling other processes' timers
	}
}

// envInt is the integer in the environment variable name, else def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
