package racetest

import (
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Way is a way to upload a blob.
type Way int

// The ways clients upload a blob.
const (
	Monolithic Way = iota // POST ?digest= with the bytes
	PostPut               // POST, then PUT ?digest= with the bytes
	Chunked               // POST, PATCHes with Content-Range, PUT ?digest=
	Streamed              // POST, PATCHes without Content-Range (docker), PUT
	Mount                 // POST ?mount=&from=; an upload if not mountable
	HeadFirst             // HEAD; a monolithic upload only if missing
	Ways                  // how many there are
)

var wayNames = [...]string{"monolithic", "post+put", "chunked", "streamed", "mount", "head-first"}

func (w Way) String() string { return wayNames[w] }

// WithDigest is an upload's Location with the digest that closes it.
func WithDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

// Upload stores b in repo the way how says (from: the repository a Mount
// asks for), and says whether the registry acknowledged it (201, or 200
// to the HEAD of HeadFirst).
func (c *Client) Upload(repo string, b Blob, how Way, from string) bool {
	base := "/v2/" + repo + "/blobs/uploads/"
	what := fmt.Sprintf("%s upload of %s to %s", how, b.Digest.String()[:19], repo)
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	switch how {
	case Monolithic:
		return c.Expect(what, c.Do("blob POST monolithic", http.MethodPost, base+"?digest="+b.Digest.String(), octet, b.Data), http.StatusCreated)
	case HeadFirst:
		h := c.Do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
		if h.Status == http.StatusOK {
			return true
		}
		if !c.Expect(what+": HEAD", h, http.StatusNotFound) {
			return false
		}
		return c.Upload(repo, b, Monolithic, "")
	case Mount:
		m := c.Do("blob POST mount", http.MethodPost, base+"?mount="+b.Digest.String()+"&from="+from, nil, nil)
		if m.Status == http.StatusCreated {
			return true
		}
		if !c.Expect(what+": mount", m, http.StatusAccepted) {
			return false
		}
		// Not mountable: the answer is a session to upload into.
		p := c.Do("blob PUT", http.MethodPut, WithDigest(m.Header.Get("Location"), b.Digest), octet, b.Data)
		return c.Expect(what+": PUT after a refused mount", p, http.StatusCreated)
	}
	post := c.Do("blob POST start", http.MethodPost, base, nil, nil)
	if !c.Expect(what+": POST", post, http.StatusAccepted) {
		return false
	}
	loc, body := post.Header.Get("Location"), b.Data
	if how == Chunked || how == Streamed {
		chunk := len(b.Data)/3 + 1
		for off := 0; off < len(b.Data); off += chunk {
			end := min(off+chunk, len(b.Data))
			h := http.Header{"Content-Type": {"application/octet-stream"}}
			if how == Chunked {
				h.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
			}
			p := c.Do("blob PATCH", http.MethodPatch, loc, h, b.Data[off:end])
			if !c.Expect(what+": PATCH", p, http.StatusAccepted) {
				return false
			}
			if want := fmt.Sprintf("0-%d", end-1); p.Header.Get("Range") != want {
				c.T.Errorf("%s: PATCH%s: Range %q, want %s", what, p.via(), p.Header.Get("Range"), want)
				return false
			}
			loc = p.Header.Get("Location")
		}
		body = nil
	}
	p := c.Do("blob PUT", http.MethodPut, WithDigest(loc, b.Digest), octet, body)
	return c.Expect(what+": PUT", p, http.StatusCreated)
}

// PutManifest PUTs m under ref and returns the status: 201, or 400
// MANIFEST_BLOB_UNKNOWN when allowMissing (something it names was deleted
// under it); anything else is reported.
func (c *Client) PutManifest(repo, ref string, m *Manifest, allowMissing bool) int {
	rs := c.Do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {m.MediaType}}, m.Body)
	what := fmt.Sprintf("PUT manifest %s:%s", repo, ref)
	switch {
	case rs.Status == http.StatusCreated:
		if got := rs.Header.Get("Docker-Content-Digest"); got != m.Digest.String() {
			c.T.Errorf("%s%s: Docker-Content-Digest %q, want %s", what, rs.via(), got, m.Digest)
		}
	case allowMissing && rs.Status == http.StatusBadRequest && rs.Code() == "MANIFEST_BLOB_UNKNOWN":
	default:
		c.Expect(what, rs, http.StatusCreated)
	}
	return rs.Status
}

// Push uploads m's blobs, each in a way rng picks (from: the repository a
// Mount asks for), and PUTs m under ref; it returns PutManifest's status,
// 0 if an upload failed. An index's children are pushed by the caller.
func (c *Client) Push(rng *rand.Rand, repo, ref string, m *Manifest, from string, allowMissing bool) int {
	for _, b := range m.Blobs {
		if !c.Upload(repo, b, Way(rng.Intn(int(Ways))), from) {
			return 0
		}
	}
	return c.PutManifest(repo, ref, m, allowMissing)
}
