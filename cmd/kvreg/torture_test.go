package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// The kill -9 torture: a kvreg child process takes concurrent pushes,
// overwrites and deletes of images that share layers, and is killed at a
// random moment, again and again. After every restart fsck must be clean
// with no repair, every tag whose last acknowledged operation was a
// manifest PUT pulls with the exact bytes pushed, and nothing whose delete
// was acknowledged comes back. An operation cut off by the kill may or may
// not have happened: its tag may show either outcome, once.
//
// KVREG_TORTURE_ROUNDS sets the number of rounds (default 50; 5 with -short).

type tortureImage struct {
	digest   string
	manifest []byte
	blobs    map[string][]byte // digest -> bytes
}

// tagState is what a tag may resolve to: digests, "" for absent.
type tagState map[string]bool

type torture struct {
	t      *testing.T
	cfg    tortureConfig
	mu     sync.Mutex
	images map[string]*tortureImage // by manifest digest
	tags   map[string]tagState      // "repo:tag"
	bases  [][]byte
	counts map[string]int
}

// tortureConfig is what a variant of the torture changes.
type tortureConfig struct {
	flags []string // more flags of serve and of the operator commands
	deep  bool     // fsck --deep after every restart, not only at the end
	// big are layers of several S3 parts that some images share, pushed
	// in chunks, so that kills find multipart uploads in flight.
	big [][]byte
	// check, if set, runs after every restart's fsck and after the final
	// deep fsck, kvreg stopped (SIGTERM) each time, so that it may open
	// the database under root; the round goes on with kvreg started
	// again.
	check func(t *testing.T, round int, root string)
	// kill is when in a round the kill comes, at random from kill[0] to
	// kill[1]; 20 to 250 ms if zero.
	kill [2]time.Duration
}

// bigChunk is the size of a PATCH of a big layer.
const bigChunk = 3 << 20

func (tt *torture) note(what string) {
	tt.mu.Lock()
	tt.counts[what]++
	tt.mu.Unlock()
}

func (tt *torture) possible(key string) tagState {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	s := tt.tags[key]
	if s == nil {
		s = tagState{"": true}
		tt.tags[key] = s
	}
	return s
}

// settle records an operation's outcome: certain (acknowledged) or, when
// the response never came, one more possibility.
func (tt *torture) settle(key, outcome string, acknowledged bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if acknowledged {
		tt.tags[key] = tagState{outcome: true}
		return
	}
	tt.tags[key][outcome] = true
}

func (tt *torture) makeImage(rnd *rand.Rand) *tortureImage {
	img := &tortureImage{blobs: map[string][]byte{}}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","nonce":%d}`, rnd.Int63()))
	uniq := make([]byte, 8<<10+rnd.Intn(56<<10))
	rnd.Read(uniq)
	layers := [][]byte{tt.bases[rnd.Intn(len(tt.bases))], uniq}
	if rnd.Intn(2) == 0 {
		layers = append([][]byte{tt.bases[rnd.Intn(len(tt.bases))]}, layers...)
	}
	if len(tt.cfg.big) > 0 && rnd.Intn(3) == 0 {
		layers = append(layers, tt.cfg.big[rnd.Intn(len(tt.cfg.big))])
	}
	var ls []string
	for _, l := range layers {
		d := digest.FromBytes(l).String()
		img.blobs[d] = l
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, len(l)))
	}
	cd := digest.FromBytes(cfg).String()
	img.blobs[cd] = cfg
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		refcount.MediaTypeOCIManifest, cd, len(cfg), strings.Join(ls, ",")))
	img.digest = digest.FromBytes(img.manifest).String()
	tt.mu.Lock()
	tt.images[img.digest] = img
	tt.mu.Unlock()
	return img
}

func do(ctx context.Context, c *http.Client, method, url, ct string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// pushBlob uploads a blob in one POST, or in chunks of bigChunk if it is
// longer, and returns the status of the request that committed it or was
// refused.
func pushBlob(ctx context.Context, c *http.Client, base, repo, d string, b []byte) (int, error) {
	if len(b) <= bigChunk {
		code, _, err := do(ctx, c, "POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", b)
		return code, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return 0, err
	}
	for at := 0; ; at += bigChunk {
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return resp.StatusCode, nil
		}
		loc := base + resp.Header.Get("Location")
		if at >= len(b) {
			code, _, err := do(ctx, c, "PUT", loc+"?digest="+d, "", nil)
			return code, err
		}
		chunk := b[at:min(at+bigChunk, len(b))]
		if req, err = http.NewRequestWithContext(ctx, "PATCH", loc, bytes.NewReader(chunk)); err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", at, at+len(chunk)-1))
	}
}

// worker runs operations on its own tags until the server dies or ctx ends.
func (tt *torture) worker(ctx context.Context, base, repo string, tags []string, rnd *rand.Rand, errs chan<- error) {
	c := &http.Client{Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		tag := tags[rnd.Intn(len(tags))]
		key := repo + ":" + tag
		cur := tt.possible(key)
		switch op := rnd.Intn(10); {
		case op < 6: // push (a new image, or over the old one)
			img := tt.makeImage(rnd)
			for d, b := range img.blobs {
				code, err := pushBlob(ctx, c, base, repo, d, b)
				if err != nil {
					return // the server is gone; the tag did not change
				}
				if code != http.StatusCreated {
					errs <- fmt.Errorf("blob upload %s: %d", d, code)
					return
				}
			}
			code, body, err := do(ctx, c, "PUT", base+"/v2/"+repo+"/manifests/"+tag, refcount.MediaTypeOCIManifest, img.manifest)
			if err != nil {
				tt.settle(key, img.digest, false)
				tt.note("push cut off")
				return
			}
			if code != http.StatusCreated {
				errs <- fmt.Errorf("manifest PUT %s: %d %s", key, code, body)
				return
			}
			tt.settle(key, img.digest, true)
			tt.note("push 201")
		case op < 8: // delete the tag
			code, body, err := do(ctx, c, "DELETE", base+"/v2/"+repo+"/manifests/"+tag, "", nil)
			if err != nil {
				tt.settle(key, "", false)
				tt.note("delete cut off")
				return
			}
			switch {
			case code == http.StatusAccepted:
				tt.settle(key, "", true)
				tt.note("delete tag 202")
			case code == http.StatusNotFound && cur[""]:
				tt.settle(key, "", true)
			default:
				errs <- fmt.Errorf("DELETE %s: %d %s", key, code, body)
				return
			}
		default: // delete by digest what the tag certainly points at
			if len(cur) != 1 || cur[""] {
				continue
			}
			var d string
			for k := range cur {
				d = k
			}
			code, body, err := do(ctx, c, "DELETE", base+"/v2/"+repo+"/manifests/"+d, "", nil)
			if err != nil {
				tt.settle(key, "", false)
				tt.note("delete cut off")
				return
			}
			if code != http.StatusAccepted {
				errs <- fmt.Errorf("DELETE %s@%s: %d %s", repo, d, code, body)
				return
			}
			tt.settle(key, "", true)
			tt.note("delete digest 202")
		}
	}
}

// verify checks every tag against the model and makes it certain.
func (tt *torture) verify(base string) {
	t := tt.t
	c := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	tt.mu.Lock()
	keys := make([]string, 0, len(tt.tags))
	for k := range tt.tags {
		keys = append(keys, k)
	}
	tt.mu.Unlock()
	for _, key := range keys {
		repo, tag, _ := strings.Cut(key, ":")
		want := tt.possible(key)
		code, body, err := do(ctx, c, "GET", base+"/v2/"+repo+"/manifests/"+tag, "", nil)
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		if code == http.StatusNotFound {
			if !want[""] {
				t.Fatalf("%s is gone, but its last acknowledged operation was a push (%v)", key, want)
			}
			tt.settle(key, "", true)
			continue
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", key, code)
		}
		d := digest.FromBytes(body).String()
		if !want[d] {
			t.Fatalf("%s resolves to %s, expected one of %v", key, d, want)
		}
		img := tt.images[d]
		if img == nil || !bytes.Equal(img.manifest, body) {
			t.Fatalf("%s: manifest bytes differ from those pushed", key)
		}
		for bd := range img.blobs {
			code, b, err := do(ctx, c, "GET", base+"/v2/"+repo+"/blobs/"+bd, "", nil)
			if err != nil || code != http.StatusOK || digest.FromBytes(b).String() != bd {
				t.Fatalf("%s: blob %s: %d %v", key, bd, code, err)
			}
		}
		tt.settle(key, d, true)
	}
	// What was deleted stays deleted: no manifest of a certainly absent
	// tag's past is reachable by that tag (checked above); and fsck below
	// finds no record without its bytes nor bytes without a record.
}

func TestKill9Torture(t *testing.T) {
	kill9Torture(t, tortureRounds(t, 50), tortureConfig{})
}

// The same on PostgreSQL: the records survive in the database, the bytes in
// the directory, and the write lock of a killed process is released for the
// next one. Fewer rounds by default, as each is slower.
func TestKill9TorturePostgres(t *testing.T) {
	kill9Torture(t, tortureRounds(t, 20), tortureConfig{flags: []string{"--db", pgtest.NewDatabase(t)}})
}

// tortureRounds: KVREG_TORTURE_ROUNDS, else n (5 with -short).
func tortureRounds(t *testing.T, n int) int {
	if testing.Short() {
		n = 5
	}
	if v := os.Getenv("KVREG_TORTURE_ROUNDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// kill9Torture runs rounds of the torture against kvreg serve as cfg says.
func kill9Torture(t *testing.T, rounds int, cfg tortureConfig) {
	bin := buildKvreg(t)
	root := t.TempDir()
	rnd := rand.New(rand.NewSource(42))
	flags := cfg.flags
	fsck := []string{"fsck", "--root", root}
	if cfg.deep {
		fsck = append(fsck, "--deep")
	}
	tt := &torture{t: t, cfg: cfg, images: map[string]*tortureImage{}, tags: map[string]tagState{}, counts: map[string]int{}}
	for i := 0; i < 4; i++ {
		b := make([]byte, 48<<10)
		rnd.Read(b)
		tt.bases = append(tt.bases, b)
	}
	const workers, tagsPerWorker = 4, 5
	window := cfg.kill
	if window[1] == 0 {
		window = [2]time.Duration{20 * time.Millisecond, 250 * time.Millisecond}
	}
	start := time.Now()
	pending := map[string]int{} // items of interrupted work fsck found before restarts, by kind
	for round := 0; round < rounds; round++ {
		srv := startServer(t, bin, root, flags...)
		base := "http://" + srv.Addr
		if round > 0 {
			tt.verify(base)
			if out, errOut, code := run(t, bin, append(fsck, flags...)...); code != 0 || strings.Contains(out, "pending: ") {
				t.Fatalf("round %d: fsck after restart (nothing may be pending): exit %d\n%s%s", round, code, out, errOut)
			}
			if cfg.check != nil {
				stopServer(t, srv)
				cfg.check(t, round, root)
				srv = startServer(t, bin, root, flags...)
				base = "http://" + srv.Addr
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			repo := fmt.Sprintf("torture/r%d", w%2)
			var tags []string
			for i := 0; i < tagsPerWorker; i++ {
				tags = append(tags, fmt.Sprintf("w%d-t%d", w, i))
			}
			wrnd := rand.New(rand.NewSource(rnd.Int63()))
			wg.Add(1)
			go func() {
				defer wg.Done()
				tt.worker(ctx, base, repo, tags, wrnd, errs)
			}()
		}
		// Kill at a random moment, with requests in flight.
		time.Sleep(window[0] + time.Duration(rnd.Int63n(int64(window[1]-window[0]))))
		srv.Kill()
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		// Before the restart, fsck of the stopped registry finds no
		// damage: what the kill interrupted is pending work, which the
		// next start finishes.
		out, errOut, code := run(t, bin, append(fsck, flags...)...)
		if code != 0 {
			t.Fatalf("round %d: fsck after kill -9, before the restart: exit %d\n%s%s", round, code, out, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if kind, ok := strings.CutPrefix(line, "pending: "); ok {
				kind, _, _ = strings.Cut(kind, " ")
				pending[kind]++
			}
		}
	}
	// A last restart and check, then a clean stop and a deep offline fsck.
	srv := startServer(t, bin, root, flags...)
	tt.verify("http://" + srv.Addr)
	stopServer(t, srv)
	if out, errOut, code := run(t, bin, append([]string{"fsck", "--root", root, "--deep"}, flags...)...); code != 0 {
		t.Fatalf("final deep fsck: exit %d\n%s%s", code, out, errOut)
	}
	if cfg.check != nil {
		cfg.check(t, rounds, root)
	}
	t.Logf("%d kill -9 rounds survived in %v; operations: %v; interrupted work pending before restarts: %v",
		rounds, time.Since(start).Round(time.Millisecond), tt.counts, pending)
}
