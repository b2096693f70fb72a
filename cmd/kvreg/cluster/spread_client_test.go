package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// spreadStats counts the answers of a race by operation and status, and
// keeps every 5xx and transport error.
type spreadStats struct {
	mu     sync.Mutex
	counts map[string]map[int]int
	sent   int
	bad    []string // 5xx answers and transport errors
}

func (s *spreadStats) add(op string, status int, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]map[int]int{}
	}
	if s.counts[op] == nil {
		s.counts[op] = map[int]int{}
	}
	s.counts[op][status]++
	s.sent++
	if status >= 500 || status == 0 {
		s.bad = append(s.bad, what)
	}
}

func (s *spreadStats) report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []string
	for op := range s.counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d 5xx or transport errors", s.sent, len(s.bad))
	for _, op := range ops {
		var sts []int
		for st := range s.counts[op] {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		fmt.Fprintf(&b, "\n  %-22s", op)
		for _, st := range sts {
			fmt.Fprintf(&b, " %d×%d", st, s.counts[op][st])
		}
	}
	return b.String()
}

// racer is one client with its own connections, talking to one address:
// haproxy's (each request to whichever replica it picks) or a replica's
// own. Its methods may run on any goroutine: they report with t.Errorf.
type racer struct {
	t     *testing.T
	base  string
	hc    *http.Client
	stats *spreadStats
}

func (c *cluster) racer(base string, stats *spreadStats) *racer {
	tr := &http.Transport{MaxIdleConnsPerHost: 2}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &racer{t: c.t, base: base, stats: stats, hc: &http.Client{
		Transport:     tr,
		Timeout:       90 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends one request (p is a path, or a Location) and counts its answer
// under op.
func (r *racer) do(op, method, p string, h http.Header, body []byte) response {
	u := p
	if !strings.HasPrefix(u, "http") {
		u = r.base + p
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		r.t.Errorf("%s %s: %v", method, p, err)
		return response{}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.stats.add(op, 0, fmt.Sprintf("%s %s: %v", method, p, err))
		r.t.Errorf("%s %s: %v", method, p, err)
		return response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Errorf("%s %s: reading the body: %v", method, p, err)
	}
	rs := response{Status: resp.StatusCode, Header: resp.Header, Body: b, Replica: resp.Header.Get(testenv.ReplicaHeader)}
	r.stats.add(op, resp.StatusCode, fmt.Sprintf("%s %s via %q: %d %s", method, p, rs.Replica, resp.StatusCode, b))
	if resp.StatusCode >= 500 {
		r.t.Errorf("%s %s via %q: %d %s", method, p, rs.Replica, resp.StatusCode, b)
	}
	return rs
}

// expect reports a status outside want (a 5xx was reported by do) and
// says whether it was in.
func (r *racer) expect(what string, rs response, want ...int) bool {
	for _, w := range want {
		if rs.Status == w {
			return true
		}
	}
	if rs.Status != 0 && rs.Status < 500 {
		r.t.Errorf("%s via %q: %d %s, want one of %v", what, rs.Replica, rs.Status, rs.Body, want)
	}
	return false
}

// spreadErrCode is the first error code of a spec error body.
func spreadErrCode(rs response) string {
	var v struct{ Errors []struct{ Code string } }
	json.Unmarshal(rs.Body, &v)
	if len(v.Errors) == 0 {
		return ""
	}
	return v.Errors[0].Code
}

// Ways to upload a blob.
const (
	spreadMonolithic = iota // POST ?digest= with the bytes
	spreadPostPut           // POST, then PUT ?digest= with the bytes
	spreadChunked           // POST, PATCHes with Content-Range, PUT ?digest=
	spreadStreamed          // POST, PATCHes without Content-Range (docker), PUT
	spreadMount             // POST ?mount=&from=; an upload if not mountable
	spreadHeadFirst         // HEAD; a monolithic upload only if missing
	spreadWays
)

var spreadNames = [...]string{"monolithic", "post+put", "chunked", "streamed", "mount", "head-first"}

// upload stores b in repo the way how says, and says whether the registry
// acknowledged it.
func (r *racer) upload(repo string, b blob, how int, from string) bool {
	base := "/v2/" + repo + "/blobs/uploads/"
	what := fmt.Sprintf("%s upload of %s to %s", spreadNames[how], b.Digest.String()[:19], repo)
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	switch how {
	case spreadMonolithic:
		return r.expect(what, r.do("blob POST monolithic", http.MethodPost, base+"?digest="+b.Digest.String(), octet, b.Data), http.StatusCreated)
	case spreadHeadFirst:
		h := r.do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
		if h.Status == http.StatusOK {
			return true
		}
		if !r.expect(what+": HEAD", h, http.StatusNotFound) {
			return false
		}
		return r.upload(repo, b, spreadMonolithic, "")
	case spreadMount:
		m := r.do("blob POST mount", http.MethodPost, base+"?mount="+b.Digest.String()+"&from="+from, nil, nil)
		if m.Status == http.StatusCreated {
			return true
		}
		if !r.expect(what+": mount", m, http.StatusAccepted) {
			return false
		}
		p := r.do("blob PUT", http.MethodPut, withDigest(m.Header.Get("Location"), b.Digest), octet, b.Data)
		return r.expect(what+": PUT after a refused mount", p, http.StatusCreated)
	}
	post := r.do("blob POST start", http.MethodPost, base, nil, nil)
	if !r.expect(what+": POST", post, http.StatusAccepted) {
		return false
	}
	loc, body := post.Header.Get("Location"), b.Data
	if how == spreadChunked || how == spreadStreamed {
		chunk := len(b.Data)/3 + 1
		for off := 0; off < len(b.Data); off += chunk {
			end := min(off+chunk, len(b.Data))
			h := http.Header{"Content-Type": {"application/octet-stream"}}
			if how == spreadChunked {
				h.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
			}
			p := r.do("blob PATCH", http.MethodPatch, loc, h, b.Data[off:end])
			if !r.expect(what+": PATCH", p, http.StatusAccepted) {
				return false
			}
			if want := fmt.Sprintf("0-%d", end-1); p.Header.Get("Range") != want {
				r.t.Errorf("%s: PATCH via %q: Range %q, want %s", what, p.Replica, p.Header.Get("Range"), want)
				return false
			}
			loc = p.Header.Get("Location")
		}
		body = nil
	}
	p := r.do("blob PUT", http.MethodPut, withDigest(loc, b.Digest), octet, body)
	return r.expect(what+": PUT", p, http.StatusCreated)
}

// putManifest PUTs img under ref and returns the status: 201, or 400
// MANIFEST_BLOB_UNKNOWN when allowMissing (something it names was deleted
// under it); anything else is reported.
func (r *racer) putManifest(repo, ref string, img image, allowMissing bool) int {
	rs := r.do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mtManifest}}, img.Manifest)
	what := fmt.Sprintf("PUT manifest %s:%s", repo, ref)
	switch {
	case rs.Status == http.StatusCreated:
		if got := rs.Header.Get("Docker-Content-Digest"); got != img.Digest.String() {
			r.t.Errorf("%s via %q: Docker-Content-Digest %q, want %s", what, rs.Replica, got, img.Digest)
		}
	case allowMissing && rs.Status == http.StatusBadRequest && spreadErrCode(rs) == "MANIFEST_BLOB_UNKNOWN":
	default:
		r.expect(what, rs, http.StatusCreated)
	}
	return rs.Status
}

// push uploads img's blobs, each in a random way, and PUTs it under ref.
func (r *racer) push(rng *rand.Rand, repo, ref string, img image, from string, allowMissing bool) int {
	for _, b := range img.blobs() {
		if !r.upload(repo, b, rng.Intn(spreadWays), from) {
			return 0
		}
	}
	return r.putManifest(repo, ref, img, allowMissing)
}

// pull GETs ref and every blob its manifest names, checking digests and
// sizes. strict: everything must be there; otherwise a 404 (something
// deleted meanwhile) ends it quietly. It returns the manifest's bytes, nil
// if it was not there.
func (r *racer) pull(repo, ref string, strict bool) []byte {
	what := "GET manifest " + repo + ":" + ref
	m := r.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {mtManifest}}, nil)
	if m.Status != http.StatusOK {
		if strict {
			r.expect(what, m, http.StatusOK)
		} else {
			r.expect(what, m, http.StatusNotFound)
		}
		return nil
	}
	d := digest.FromBytes(m.Body)
	if got := m.Header.Get("Docker-Content-Digest"); got != d.String() {
		r.t.Errorf("%s via %q: Docker-Content-Digest %q, bytes are %s", what, m.Replica, got, d)
	}
	var v struct {
		Config struct {
			Digest string
			Size   int
		}
		Layers []struct {
			Digest string
			Size   int
		}
	}
	if err := json.Unmarshal(m.Body, &v); err != nil {
		r.t.Errorf("%s via %q: %v", what, m.Replica, err)
		return m.Body
	}
	for _, ds := range append(v.Layers, v.Config) {
		g := r.do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+ds.Digest, nil, nil)
		if g.Status != http.StatusOK {
			if strict {
				r.expect("GET blob "+ds.Digest+" of "+repo+":"+ref, g, http.StatusOK)
			} else {
				r.expect("GET blob "+ds.Digest+" of "+repo+":"+ref, g, http.StatusNotFound)
			}
			continue
		}
		if got := digest.FromBytes(g.Body).String(); got != ds.Digest || len(g.Body) != ds.Size {
			r.t.Errorf("GET blob %s of %s:%s via %q: %d bytes of digest %s", ds.Digest, repo, ref, g.Replica, len(g.Body), got)
		}
	}
	return m.Body
}

func (r *racer) tags(repo string) []string {
	rs := r.do("tags GET", http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil)
	if rs.Status != http.StatusOK {
		r.expect("tags of "+repo, rs, http.StatusNotFound)
		return nil
	}
	var v struct{ Tags []string }
	if err := json.Unmarshal(rs.Body, &v); err != nil {
		r.t.Errorf("tags of %s: %v", repo, err)
	}
	return v.Tags
}

// spreadTogether runs fns at once (as near as goroutines allow) and waits.
func spreadTogether(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn()
		}()
	}
	close(start)
	wg.Wait()
}
