package api_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// probe is one request of the security table.
type probe struct {
	name, method, path string
	body               []byte
	class              string // "base", "catalog", "read", "push", "delete"
}

// probes are every route of the API against repo: img is pushed there as
// v1, session is an upload opened there, extra a blob not yet pushed.
func probes(repo string, img manifest, session string, extra blob) []probe {
	layer := img.Layers[0].Digest
	return []probe{
		{"base", "GET", "/v2/", nil, "base"},
		{"catalog", "GET", "/v2/_catalog", nil, "catalog"},
		{"tags", "GET", "/v2/" + repo + "/tags/list", nil, "read"},
		{"get manifest by tag", "GET", "/v2/" + repo + "/manifests/v1", nil, "read"},
		{"head manifest", "HEAD", "/v2/" + repo + "/manifests/v1", nil, "read"},
		{"get manifest by digest", "GET", "/v2/" + repo + "/manifests/" + img.Digest, nil, "read"},
		{"put manifest", "PUT", "/v2/" + repo + "/manifests/v2", img.Body, "push"},
		{"delete tag", "DELETE", "/v2/" + repo + "/manifests/v1", nil, "delete"},
		{"delete manifest", "DELETE", "/v2/" + repo + "/manifests/" + img.Digest, nil, "delete"},
		{"get blob", "GET", "/v2/" + repo + "/blobs/" + layer, nil, "read"},
		{"head blob", "HEAD", "/v2/" + repo + "/blobs/" + layer, nil, "read"},
		{"delete blob", "DELETE", "/v2/" + repo + "/blobs/" + layer, nil, "delete"},
		{"start upload", "POST", "/v2/" + repo + "/blobs/uploads/", nil, "push"},
		{"monolithic upload", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(extra.Digest), extra.Data, "push"},
		{"mount", "POST", "/v2/" + repo + "/blobs/uploads/?mount=" + url.QueryEscape(layer) + "&from=team/app", nil, "push"},
		{"upload status", "GET", session, nil, "push"},
		{"patch upload", "PATCH", session, extra.Data, "push"},
		{"finish upload", "PUT", withQuery(session, "digest", extra.Digest), extra.Data, "push"},
		{"cancel upload", "DELETE", session, nil, "push"},
		{"referrers", "GET", "/v2/" + repo + "/referrers/" + img.Digest, nil, "read"},
	}
}

// TestSecurityTable sends every route without credentials, with wrong
// ones, and as users lacking the right; then paths and digests built to
// escape the data directory; then oversized and truncated bodies. Every one
// is refused with the right status and code, and no file anywhere under
// the data directory's parent changes.
func TestSecurityTable(t *testing.T) {
	// The loopback peer is a trusted balancer, so that each request with
	// a wrong password comes from a client of its own (X-Forwarded-For)
	// and none is throttled for the failures before it.
	cfg := authConfig(t, api.Config{MaxManifestBytes: 8 << 10, MaxBlobBytes: 64 << 10, MaxChunkBytes: 32 << 10,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, teamRules)
	r := startRegistry(t, regOptions{Config: cfg})
	alice := r.as("alice")
	rng := rand.New(rand.NewSource(51))
	repos := []string{"team/app", "secret/app", "public/app"}
	imgs, sessions := map[string]manifest{}, map[string]string{}
	for _, repo := range repos {
		imgs[repo] = randomOCIImage(rng, nil, 2<<10, 3<<10)
		alice.pushImage(repo, "v1", imgs[repo])
		sessions[repo] = alice.startUpload(repo)
	}
	extra := randomLayer(rng, mtOCILayer, 1<<10)
	before := r.snapshot(t)

	badCredentials := []struct{ name, header string }{
		{"wrong password", basicHeader("alice", "wrong")},
		{"empty password", basicHeader("alice", "")},
		{"unknown user", basicHeader("mallory", "mallory-pw")},
		{"bearer token", "Bearer abc.def.ghi"},
		{"garbled basic", "Basic !!!not-base64"},
		{"basic without colon", "Basic " + "YWxpY2U="},
	}
	type caller struct {
		name, header string
		user         string // "" anonymous or bad credentials
		bad          bool
	}
	callers := []caller{{name: "anonymous"}}
	for _, b := range badCredentials {
		callers = append(callers, caller{name: b.name, header: b.header, bad: true})
	}
	for _, u := range []string{"bob", "carol"} {
		callers = append(callers, caller{name: u, header: basicHeader(u, password(u)), user: u})
	}
	// rights: what each caller may do per repository (rules in teamRules).
	may := func(c caller, repo, class string) bool {
		if c.bad {
			return false
		}
		public := strings.HasPrefix(repo, "public/")
		team := strings.HasPrefix(repo, "team/")
		switch class {
		case "read":
			return public || (team && c.user != "")
		case "push":
			return team && c.user == "bob"
		}
		return false
	}
	rows := 0
	for _, c := range callers {
		cr := r.withAuthorization(c.header)
		for _, repo := range repos {
			for _, p := range probes(repo, imgs[repo], sessions[repo], extra) {
				what := fmt.Sprintf("%s: %s %s (%s)", c.name, p.method, p.path, p.name)
				var wantStatus int
				var wantCode string
				switch {
				case c.bad:
					wantStatus, wantCode = http.StatusUnauthorized, "UNAUTHORIZED"
				case p.class == "base" && c.user == "":
					wantStatus, wantCode = http.StatusUnauthorized, "UNAUTHORIZED"
				case p.class == "base" || p.class == "catalog":
					wantStatus = http.StatusOK
				case may(c, repo, p.class):
					if p.class != "read" {
						continue // an allowed write would write: not this table's business
					}
					wantStatus = http.StatusOK
				case c.user == "":
					wantStatus, wantCode = http.StatusUnauthorized, "UNAUTHORIZED"
				default:
					wantStatus, wantCode = http.StatusForbidden, "DENIED"
				}
				h := hdr("Content-Type", imgs[repo].MediaType)
				if c.bad {
					h.Set("X-Forwarded-For", fmt.Sprintf("10.0.%d.%d", rows/250, rows%250+1))
				}
				resp := cr.do(p.method, p.path, h, p.body)
				rows++
				if resp.Status != wantStatus {
					t.Errorf("%s: %s, want %d", what, resp, wantStatus)
					continue
				}
				if wantStatus == http.StatusUnauthorized {
					if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="kvreg"` {
						t.Errorf("%s: WWW-Authenticate %q", what, got)
					}
				}
				if wantCode != "" && p.method != http.MethodHead {
					if codes, err := decodeErrorCodes(resp); err != nil || len(codes) != 1 || codes[0] != wantCode {
						t.Errorf("%s: codes %v (%v), want %s", what, codes, err, wantCode)
					}
				}
				if wantStatus == http.StatusOK && p.class == "read" && p.method == http.MethodGet && len(resp.Body) == 0 {
					t.Errorf("%s: empty body", what)
				}
			}
		}
	}
	t.Logf("%d refusals and permitted reads checked", rows)
	sameSnapshot(t, "refused requests", before, r.snapshot(t))

	// _catalog lists only what the caller may pull.
	for _, c := range []struct {
		who  *testRegistry
		name string
		want []string
	}{
		{r, "anonymous", []string{"public/app"}},
		{r.as("carol"), "carol", []string{"public/app", "team/app"}},
		{r.as("bob"), "bob", []string{"public/app", "team/app"}},
		{alice, "alice", []string{"public/app", "secret/app", "team/app"}},
	} {
		if got := c.who.catalog(); !slices.Equal(got, c.want) {
			t.Errorf("catalog as %s: %v, want %v", c.name, got, c.want)
		}
	}
	// Pagination never hints at hidden repositories.
	page := r.as("carol").get("/v2/_catalog?n=1", nil)
	if link := page.Header.Get("Link"); !strings.Contains(link, "last=public%2Fapp") {
		t.Errorf("carol's first page of one: Link %q", link)
	}
	page = r.as("carol").get("/v2/_catalog?n=1&last=public/app", nil)
	if link := page.Header.Get("Link"); link != "" || !bytes.Contains(page.Body, []byte(`"team/app"`)) {
		t.Errorf("carol's last page: Link %q, body %s", link, page.Body)
	}

	t.Run("escapes", func(t *testing.T) {
		auth := "Authorization: " + basicHeader("alice", password("alice"))
		sess := strings.TrimPrefix(sessions["team/app"], r.srv.URL)
		hex64 := strings.Repeat("ab", 32)
		long := strings.Repeat("a", 300)
		for _, c := range []struct {
			method, path string
			body         []byte
			status       int
		}{
			{"GET", "/v2/../../../../etc/passwd", nil, 404},
			{"GET", "/v2/..%2f..%2fetc/manifests/latest", nil, 400},
			{"GET", "/v2/team/../../../etc/tags/list", nil, 400},
			{"POST", "/v2/a/../../b/blobs/uploads/", nil, 400},
			{"POST", "/v2/%2e%2e/%2e%2e/x/blobs/uploads/", nil, 400},
			{"GET", "/v2/Team/App/tags/list", nil, 400},
			{"GET", "/v2/team//app/tags/list", nil, 400},
			{"GET", "/v2/team/app%00/tags/list", nil, 400},
			{"GET", "/v2/" + long + "/tags/list", nil, 400},
			{"GET", "/v2/team/app/blobs/sha256:..%2F..%2F..%2Fkvreg.db", nil, 404},
			{"GET", "/v2/team/app/blobs/sha256:" + hex64 + "%2F..%2F..%2Fx", nil, 404},
			{"GET", "/v2/team/app/blobs/sha256:" + strings.ToUpper(hex64), nil, 400},
			{"GET", "/v2/team/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, 400},
			{"GET", "/v2/team/app/blobs/..", nil, 400},
			{"DELETE", "/v2/team/app/blobs/sha512:..%2F..", nil, 404},
			{"GET", "/v2/team/app/manifests/..%2F..%2Fkvreg.db", nil, 404},
			{"PUT", "/v2/team/app/manifests/..%2F..%2Fx", imgs["team/app"].Body, 404},
			{"PUT", "/v2/team/app/manifests/..", imgs["team/app"].Body, 400},
			{"PUT", "/v2/team/app/manifests/sha256:..%2F..%2Fx", imgs["team/app"].Body, 404},
			{"PATCH", "/v2/team/app/blobs/uploads/..%2F..%2Fkvreg.db", []byte("x"), 404},
			{"PATCH", "/v2/team/app/blobs/uploads/" + strings.Repeat(".", 32), []byte("x"), 404},
			{"PUT", "/v2/team/app/blobs/uploads/..%2F..%2F..%2Fetc?digest=" + extra.Digest, []byte("x"), 404},
			{"PUT", sess + "?digest=sha256:..%2F..%2F..%2Fetc%2Fpasswd", nil, 400},
			{"PUT", sess + "?digest=sha256:" + hex64 + "%2F..", nil, 400},
			{"POST", "/v2/team/app/blobs/uploads/?digest=sha256:..%2F..%2Fx", []byte("x"), 400},
			{"POST", "/v2/team/app/blobs/uploads/?mount=sha256:..%2F..%2Fx&from=team/app", nil, 400},
			{"POST", "/v2/team/app/blobs/uploads/?mount=" + imgs["secret/app"].Layers[0].Digest + "&from=..%2Fsecret%2Fapp", nil, 400},
			{"GET", "/v2/team/app/referrers/sha256:..%2F..", nil, 404},
			// A manifest whose descriptors point outside: refused as invalid or unknown.
			{"PUT", "/v2/team/app/manifests/evil", []byte(`{"schemaVersion":2,"mediaType":"` + mtOCIManifest + `","config":{"mediaType":"` + mtOCIConfig + `","digest":"sha256:../../../etc/passwd","size":1},"layers":[]}`), 400},
		} {
			// (A %2F in a reference splits it into path segments: no route.)
			headers := []string{auth, "Content-Type: " + mtOCIManifest, fmt.Sprintf("Content-Length: %d", len(c.body))}
			resp := r.rawRequest(rawHTTP(c.method, c.path, headers, c.body), false)
			if resp.Status != c.status {
				t.Errorf("%s %s: %s, want %d", c.method, c.path, resp, c.status)
				continue
			}
			if codes, err := decodeErrorCodes(resp); err != nil || len(codes) == 0 {
				t.Errorf("%s %s: no error code: %v", c.method, c.path, err)
			}
		}
		sameSnapshot(t, "escape attempts", before, r.snapshot(t))
	})

	t.Run("bodies", func(t *testing.T) {
		auth := "Authorization: " + basicHeader("alice", password("alice"))
		sess := strings.TrimPrefix(sessions["team/app"], r.srv.URL)
		big := func(n int) []byte { return randomBytes(rng, n) }
		chunked := func(b []byte) []byte {
			var out bytes.Buffer
			for len(b) > 0 {
				n := min(len(b), 4096)
				fmt.Fprintf(&out, "%x\r\n%s\r\n", n, b[:n])
				b = b[n:]
			}
			out.WriteString("0\r\n\r\n")
			return out.Bytes()
		}
		withLen := func(n int) []string { return []string{auth, fmt.Sprintf("Content-Length: %d", n)} }
		te := []string{auth, "Transfer-Encoding: chunked"}
		m9k := big(9 << 10)
		b40k, b70k := big(40<<10), big(70<<10)
		for _, c := range []struct {
			what       string
			raw        []byte
			closeWrite bool
			status     int
			code       string
		}{
			{"manifest over the limit", rawHTTP("PUT", "/v2/team/app/manifests/big", append(withLen(len(m9k)), "Content-Type: "+mtOCIManifest), m9k), false, 413, "SIZE_INVALID"},
			{"manifest over the limit, no length", rawHTTP("PUT", "/v2/team/app/manifests/big", append(te, "Content-Type: "+mtOCIManifest), chunked(m9k)), false, 413, "SIZE_INVALID"},
			{"blob over the blob limit", rawHTTP("POST", "/v2/team/app/blobs/uploads/?digest="+newBlob("", b70k).Digest, withLen(len(b70k)), b70k), false, 413, "SIZE_INVALID"},
			{"blob over the chunk limit", rawHTTP("POST", "/v2/team/app/blobs/uploads/?digest="+newBlob("", b40k).Digest, withLen(len(b40k)), b40k), false, 413, "SIZE_INVALID"},
			{"chunk over the limit", rawHTTP("PATCH", sess, withLen(len(b40k)), b40k), false, 413, "SIZE_INVALID"},
			{"chunk over the limit, no length", rawHTTP("PATCH", sess, te, chunked(b40k)), false, 413, "SIZE_INVALID"},
			{"truncated monolithic blob", rawHTTP("POST", "/v2/team/app/blobs/uploads/?digest="+extra.Digest, withLen(1000), extra.Data[:10]), true, 400, "BLOB_UPLOAD_INVALID"},
			{"truncated chunk", rawHTTP("PATCH", sess, withLen(1000), extra.Data[:10]), true, 400, "BLOB_UPLOAD_INVALID"},
			{"truncated last chunk", rawHTTP("PUT", sess+"?digest="+extra.Digest, withLen(1000), extra.Data[:10]), true, 400, "BLOB_UPLOAD_INVALID"},
			{"truncated manifest", rawHTTP("PUT", "/v2/team/app/manifests/cut", append(withLen(len(imgs["team/app"].Body)), "Content-Type: "+mtOCIManifest), imgs["team/app"].Body[:20]), true, 400, "MANIFEST_INVALID"},
		} {
			resp := r.rawRequest(c.raw, c.closeWrite)
			if resp.Status != c.status {
				t.Errorf("%s: %s, want %d", c.what, resp, c.status)
				continue
			}
			if codes, err := decodeErrorCodes(resp); err != nil || len(codes) != 1 || codes[0] != c.code {
				t.Errorf("%s: codes %v (%v), want %s", c.what, codes, err, c.code)
			}
		}
		// The session took none of it.
		st := alice.get(sessions["team/app"], nil)
		if st.Status != http.StatusNoContent || st.Header.Get("Range") != "0-0" {
			t.Errorf("session after refused chunks: %s, Range %q", st, st.Header.Get("Range"))
		}
		// Chunks within the chunk limit that add up past the blob limit:
		// the one that crosses it is refused, the session keeps the rest.
		loc := alice.startUpload("team/app")
		for i, want := range []int{202, 202, 413} {
			resp := alice.patchChunk(loc, int64(i*30<<10), big(30<<10))
			if resp.Status != want {
				t.Fatalf("chunk %d of 30 KiB: %s, want %d", i, resp, want)
			}
		}
		if st := alice.get(loc, nil); st.Header.Get("Range") != fmt.Sprintf("0-%d", 60<<10-1) {
			t.Errorf("after the refused chunk: Range %q", st.Header.Get("Range"))
		}
		expectStatus(t, "cancel", alice.del(loc), http.StatusNoContent)
		after := r.snapshot(t)
		if r.reg.Backend.Blob != regtest.BlobsLocal {
			// The accepted chunks wrote their upload's state in the
			// database and the cancel removed it: a bbolt file's pages
			// moved. That no upload is left is compared as the store's
			// uploads ("store: upload").
			for k := range after {
				if filepath.Base(k) == refcount.DBFile {
					after[k] = before[k]
				}
			}
		}
		sameSnapshot(t, "oversized and truncated bodies", before, after)
	})

	// Everything is still there and whole.
	for _, repo := range repos {
		alice.pull(repo, "v1", imgs[repo])
	}
	for _, loc := range sessions {
		expectStatus(t, "cancel", alice.del(loc), http.StatusNoContent)
	}
	r.checkRegistry()
}
