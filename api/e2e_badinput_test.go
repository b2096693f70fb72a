package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Every malformed request gets a 4xx with the spec's error code, and leaves
// nothing behind: no new blob file, no upload directory, no new repository.
func TestE2EBadInput(t *testing.T) {
	r, rng := startSeeded(t, 8)

	// A known state: one image in good/img, one blob only in elsewhere.
	good := randomOCIImage(rng, nil, 8<<10)
	r.pushImage("good/img", "v1", good)
	foreign := randomLayer(rng, mtOCILayer, 3<<10)
	r.pushBlob("elsewhere", foreign)
	baseline := [][]blob{good.Blobs(), {foreign}}
	r.checkInvariants(baseline...)

	payload := randomBytes(rng, 4<<10)
	payloadDigest := digest.FromBytes(payload).String()
	otherDigest := digest.FromBytes([]byte("something else")).String()
	md5Hex := "d41d8cd98f00b204e9800998ecf8427e"
	missing := randomLayer(rng, mtOCILayer, 1<<10) // never uploaded

	badManifest := func(contentType string, body []byte) func(*testRegistry) response {
		return func(r *testRegistry) response { return r.putManifest("good/img", "bad", contentType, body) }
	}
	bigAnnotation := strings.Repeat("x", 4<<20+10)
	oversized := ociImage(*good.Config, good.Layers, imageOpts{Annotations: map[string]string{"pad": bigAnnotation}})

	// inSession runs send on a new upload session in good/img and keeps the
	// session's Location in the response, for the row's after.
	inSession := func(send func(r *testRegistry, loc string) response) func(*testRegistry) response {
		return func(r *testRegistry) response {
			loc := r.startUpload("good/img")
			resp := send(r, loc)
			resp.Header.Set("X-Test-Location", loc)
			return resp
		}
	}
	// cancelSession ends a session the refused request may have left open
	// for a retry, as a client would.
	// refusedAt checks what a refused chunk (416) leaves: an upload of
	// size bytes, said by the refusal's Range and by the upload's status,
	// that takes the chunk starting there; then cancels it.
	refusedAt := func(size int) func(t *testing.T, r *testRegistry, resp response) {
		want := fmt.Sprintf("0-%d", max(size-1, 0))
		return func(t *testing.T, r *testRegistry, resp response) {
			if got := resp.Header.Get("Range"); got != want {
				t.Errorf("416: Range %q, want %s", got, want)
			}
			loc := sessionOf(resp)
			s := r.get(loc, nil)
			expectStatus(t, "upload status", s, http.StatusNoContent)
			if got := s.Header.Get("Range"); got != want {
				t.Errorf("status after a refused chunk: Range %q, want %s", got, want)
			}
			expectStatus(t, "the chunk where the upload ends", r.patchChunk(loc, int64(size), payload[size:size+50]), http.StatusAccepted)
			expectStatus(t, "cancel", r.del(loc), http.StatusNoContent)
		}
	}
	cancelSession := func(t *testing.T, r *testRegistry, resp response) {
		d := r.del(sessionOf(resp))
		if d.Status != http.StatusNoContent && d.Status != http.StatusNotFound {
			t.Errorf("cancel: %s", d)
		}
	}

	type row struct {
		name   string
		run    func(r *testRegistry) response
		status int    // 0: any 4xx
		code   string // "" for HEAD (no body)
		after  func(t *testing.T, r *testRegistry, resp response)
	}
	rows := []row{
		{name: "GET blob with malformed digest", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/blobs/sha256:xyz", nil) }},
		{name: "HEAD blob with malformed digest", status: 400,
			run: func(r *testRegistry) response { return r.head("/v2/good/img/blobs/sha256:xyz", nil) }},
		{name: "GET blob with uppercase hex", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				return r.get("/v2/good/img/blobs/"+strings.ToUpper(good.Layers[0].Digest[:7])+good.Layers[0].Digest[7:], nil)
			}},
		{name: "GET blob with unsupported algorithm", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/blobs/md5:"+md5Hex, nil) }},
		{name: "monolithic POST with unsupported algorithm", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPost, "/v2/good/img/blobs/uploads/?digest=md5:"+md5Hex, nil, payload)
			}},
		{name: "PUT finishing an upload with a malformed digest", status: 400, code: "DIGEST_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				expectStatus(r.t, "PATCH", r.patchChunk(loc, 0, payload), http.StatusAccepted)
				return r.do(http.MethodPut, withQuery(loc, "digest", "sha256:zz"), nil, nil)
			}),
			// The session may stay for a retry; the client can cancel it.
			after: cancelSession},
		{name: "PUT finishing an upload with no digest", status: 400, code: "DIGEST_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				return r.do(http.MethodPut, loc, nil, payload)
			}),
			after: cancelSession},
		{name: "monolithic POST whose bytes do not match the digest", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPost, "/v2/good/img/blobs/uploads/?digest="+otherDigest, nil, payload)
			},
			after: func(t *testing.T, r *testRegistry, _ response) {
				if h := r.head("/v2/good/img/blobs/"+otherDigest, nil); h.Status != http.StatusNotFound {
					t.Errorf("HEAD of the mismatched digest: %d", h.Status)
				}
				if h := r.head("/v2/good/img/blobs/"+payloadDigest, nil); h.Status != http.StatusNotFound {
					t.Errorf("HEAD of the bytes' real digest: %d", h.Status)
				}
			}},
		{name: "monolithic POST into a new repository with a mismatched digest", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPost, "/v2/brand/new/blobs/uploads/?digest="+otherDigest, nil, payload)
			}},
		{name: "PUT finishing a chunked upload with a mismatched digest", status: 400, code: "DIGEST_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				expectStatus(r.t, "PATCH", r.patchChunk(loc, 0, payload), http.StatusAccepted)
				return r.do(http.MethodPut, withQuery(loc, "digest", otherDigest), nil, nil)
			}),
			after: func(t *testing.T, r *testRegistry, resp response) {
				// The upload is gone.
				g := r.get(sessionOf(resp), nil)
				expectError(t, "GET status of the failed upload", g, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			}},
		{name: "PUT with a final chunk and a mismatched digest", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				loc := r.startUpload("good/img")
				return r.do(http.MethodPut, withQuery(loc, "digest", otherDigest), hdr("Content-Type", "application/octet-stream"), payload)
			}},
		{name: "PATCH unknown upload", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPatch, "/v2/good/img/blobs/uploads/"+random32Hex(rng), nil, payload)
			}},
		{name: "PUT unknown upload", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPut, "/v2/good/img/blobs/uploads/"+random32Hex(rng)+"?digest="+payloadDigest, nil, payload)
			}},
		{name: "PUT unknown upload, no body", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPut, "/v2/good/img/blobs/uploads/"+random32Hex(rng)+"?digest="+payloadDigest, nil, nil)
			}},
		{name: "GET unknown upload", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.get("/v2/good/img/blobs/uploads/"+random32Hex(rng), nil)
			}},
		{name: "DELETE unknown upload", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.del("/v2/good/img/blobs/uploads/" + random32Hex(rng))
			}},
		{name: "PATCH malformed upload id", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPatch, "/v2/good/img/blobs/uploads/NOT-AN-ID", nil, payload)
			}},
		{name: "upload id with an escaped traversal",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPatch, "/v2/good/img/blobs/uploads/..%2F..%2Fblobs", nil, payload)
			}},
		{name: "upload session used from another repository", status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			run: inSession(func(r *testRegistry, loc string) response {
				id := loc[strings.LastIndex(loc, "/")+1:]
				return r.do(http.MethodPatch, "/v2/elsewhere/blobs/uploads/"+id, nil, payload)
			}),
			after: func(t *testing.T, r *testRegistry, resp response) {
				expectStatus(t, "cancel in its own repository", r.del(sessionOf(resp)), http.StatusNoContent)
			}},
		{name: "PATCH chunk starting past the end", status: 416, code: "BLOB_UPLOAD_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				return r.patchChunk(loc, 100, payload[:100])
			}),
			// Nothing was written: the session still has 0 bytes.
			after: refusedAt(0)},
		{name: "PATCH sending the first chunk again to the upload's first URL", status: 416, code: "BLOB_UPLOAD_INVALID",
			// The first URL may carry the token of an upload with no
			// bytes (on S3): it must not start the upload over.
			run: inSession(func(r *testRegistry, loc string) response {
				expectStatus(r.t, "first chunk", r.patchChunk(loc, 0, payload[:100]), http.StatusAccepted)
				return r.patchChunk(loc, 0, payload[:100])
			}),
			after: refusedAt(100)},
		{name: "PATCH chunk repeating bytes already received", status: 416, code: "BLOB_UPLOAD_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				expectStatus(r.t, "first chunk", r.patchChunk(loc, 0, payload[:100]), http.StatusAccepted)
				return r.patchChunk(loc, 50, payload[50:150])
			}),
			after: refusedAt(100)},
		{name: "manifest referencing a missing blob", status: 400, code: "MANIFEST_BLOB_UNKNOWN",
			run: func(r *testRegistry) response {
				m := ociImage(*good.Config, []blob{good.Layers[0], missing}, imageOpts{})
				return r.putManifest("good/img", "bad", m.MediaType, m.Body)
			}},
		{name: "manifest in a new repository referencing a missing blob", status: 400, code: "MANIFEST_BLOB_UNKNOWN",
			run: func(r *testRegistry) response {
				m := ociImage(*good.Config, []blob{missing}, imageOpts{})
				return r.putManifest("brand/new", "v1", m.MediaType, m.Body)
			}},
		{name: "manifest referencing a blob linked only in another repository", status: 400, code: "MANIFEST_BLOB_UNKNOWN",
			run: func(r *testRegistry) response {
				m := ociImage(*good.Config, []blob{good.Layers[0], foreign}, imageOpts{})
				return r.putManifest("good/img", "bad", m.MediaType, m.Body)
			}},
		{name: "index referencing a missing child", status: 400, code: "MANIFEST_BLOB_UNKNOWN",
			run: func(r *testRegistry) response {
				child := ociImage(*good.Config, []blob{missing}, imageOpts{})
				idx := index(mtOCIIndex, good, child)
				return r.putManifest("good/img", "bad", idx.MediaType, idx.Body)
			}},
		{name: "manifest that is not JSON", status: 400, code: "MANIFEST_INVALID",
			run: badManifest(mtOCIManifest, []byte(`{"schemaVersion": 2, "mediaType": `))},
		{name: "manifest with trailing garbage", status: 400, code: "MANIFEST_INVALID",
			run: badManifest(mtOCIManifest, append(append([]byte(nil), good.Body...), "}}"...))},
		{name: "manifest whose mediaType contradicts its Content-Type", status: 400, code: "MANIFEST_INVALID",
			run: badManifest(mtOCIManifest, bytes.Replace(good.Body, []byte(mtOCIManifest), []byte(mtDockerList), 1))},
		{name: "manifest of an unknown media type", status: 400, code: "MANIFEST_INVALID",
			run: badManifest("application/vnd.example.unknown+json", bytes.Replace(good.Body, []byte(mtOCIManifest), []byte("application/vnd.example.unknown+json"), 1))},
		{name: "Docker schema1 manifest", status: 400, code: "MANIFEST_INVALID",
			run: badManifest("application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1,"name":"good/img","tag":"bad","fsLayers":[]}`))},
		{name: "manifest without schemaVersion", status: 400, code: "MANIFEST_INVALID",
			run: badManifest(mtOCIManifest, bytes.Replace(good.Body, []byte(`"schemaVersion":2,`), nil, 1))},
		{name: "manifest with a malformed layer digest", status: 400, code: "MANIFEST_INVALID",
			run: badManifest(mtOCIManifest, bytes.Replace(good.Body, []byte(good.Layers[0].Digest), []byte("sha256:nothex"), 1))},
		{name: "manifest PUT by a digest that is not its own", status: 400, code: "DIGEST_INVALID",
			run: func(r *testRegistry) response {
				return r.putManifest("good/img", otherDigest, good.MediaType, good.Body)
			}},
		{name: "manifest over 4 MiB", status: 413, code: "SIZE_INVALID",
			run: func(r *testRegistry) response {
				return r.putManifest("good/img", "big", oversized.MediaType, oversized.Body)
			}},
		{name: "manifest over 4 MiB without Content-Length", status: 413, code: "SIZE_INVALID",
			run: func(r *testRegistry) response {
				req, err := http.NewRequest(http.MethodPut, r.url("/v2/good/img/manifests/big"), io.MultiReader(bytes.NewReader(oversized.Body)))
				if err != nil {
					r.t.Fatal(err)
				}
				req.ContentLength = -1 // chunked
				req.Header.Set("Content-Type", oversized.MediaType)
				return r.send(req)
			}},
		{name: "repository name with uppercase", status: 400, code: "NAME_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/Foo/tags/list", nil) }},
		{name: "upload into a repository name with uppercase", status: 400, code: "NAME_INVALID",
			run: func(r *testRegistry) response {
				return r.do(http.MethodPost, "/v2/Good/Img/blobs/uploads/?digest="+payloadDigest, nil, payload)
			}},
		{name: "repository name over 255 characters", status: 400, code: "NAME_INVALID",
			run: func(r *testRegistry) response {
				return r.get("/v2/"+strings.Repeat("a/", 128)+"b/tags/list", nil)
			}},
		{name: "manifest PUT under an invalid tag",
			run: func(r *testRegistry) response {
				return r.putManifest("good/img", "-bad.tag", good.MediaType, good.Body)
			}},
		{name: "repository name with .. (raw path)", code: "NAME_INVALID",
			run: func(r *testRegistry) response {
				return r.rawRequest(rawHTTP("GET", "/v2/good/../img/manifests/v1", nil, nil), false)
			}},
		{name: "upload into a traversal path (raw path)", code: "NAME_INVALID",
			run: func(r *testRegistry) response {
				return r.rawRequest(rawHTTP("POST", "/v2/../../tmp/blobs/uploads/?digest="+payloadDigest,
					[]string{"Content-Length: " + itoa(len(payload))}, payload), false)
			}},
		{name: "repository name with an escaped slash-dot-dot", status: 0, code: "NAME_INVALID",
			run: func(r *testRegistry) response {
				return r.rawRequest(rawHTTP("GET", "/v2/good/%2e%2e/img/tags/list", nil, nil), false)
			}},
		{name: "manifest of an unknown repository", status: 404, code: "NAME_UNKNOWN",
			run: func(r *testRegistry) response { return r.get("/v2/no/such/repo/manifests/latest", nil) }},
		{name: "catalog with n that is not a number", status: 400, code: "PAGINATION_NUMBER_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/_catalog?n=ten", nil) }},
		{name: "catalog with a negative n", status: 400, code: "PAGINATION_NUMBER_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/_catalog?n=-1", nil) }},
		{name: "tags with n that is not a number", status: 400, code: "PAGINATION_NUMBER_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/tags/list?n=1e3", nil) }},
		{name: "tags with a negative n", status: 400, code: "PAGINATION_NUMBER_INVALID",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/tags/list?n=-5&last=v1", nil) }},
		{name: "tags of an unknown repository", status: 404, code: "NAME_UNKNOWN",
			run: func(r *testRegistry) response { return r.get("/v2/no/such/repo/tags/list", nil) }},
		{name: "unknown tag of a known repository", status: 404, code: "MANIFEST_UNKNOWN",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/manifests/nope", nil) }},
		{name: "blob known elsewhere is not visible here", status: 404, code: "BLOB_UNKNOWN",
			run: func(r *testRegistry) response { return r.get("/v2/good/img/blobs/"+foreign.Digest, nil) }},
		{name: "DELETE of a blob a manifest uses", code: "DENIED",
			run: func(r *testRegistry) response { return r.del("/v2/good/img/blobs/" + good.Layers[0].Digest) },
			after: func(t *testing.T, r *testRegistry, _ response) {
				r.pull("good/img", "v1", good)
			}},
		{name: "monolithic POST with a truncated body (raw)", code: "BLOB_UPLOAD_INVALID",
			run: func(r *testRegistry) response {
				raw := rawHTTP("POST", "/v2/good/img/blobs/uploads/?digest="+payloadDigest,
					[]string{"Content-Length: " + itoa(len(payload)), "Content-Type: application/octet-stream"}, payload[:len(payload)/2])
				return r.rawRequest(raw, true)
			},
			after: func(t *testing.T, r *testRegistry, _ response) {
				if h := r.head("/v2/good/img/blobs/"+payloadDigest, nil); h.Status != http.StatusNotFound {
					t.Errorf("HEAD after a truncated upload: %d", h.Status)
				}
			}},
		{name: "PATCH with a truncated body (raw)", code: "BLOB_UPLOAD_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				expectStatus(r.t, "first chunk", r.patchChunk(loc, 0, payload[:100]), http.StatusAccepted)
				raw := rawHTTP("PATCH", loc, []string{
					"Content-Length: 1000", "Content-Range: 100-1099", "Content-Type: application/octet-stream",
				}, payload[100:600])
				return r.rawRequest(raw, true)
			}),
			after: func(t *testing.T, r *testRegistry, resp response) {
				// The partial chunk was rolled back; the session resumes at 100.
				loc := sessionOf(resp)
				s := r.get(loc, nil)
				expectStatus(t, "status after a truncated chunk", s, http.StatusNoContent)
				if got := s.Header.Get("Range"); got != "0-99" {
					t.Errorf("after a truncated chunk: Range %q, want 0-99", got)
				}
				b := newBlob(mtOCILayer, payload[:1100])
				expectStatus(t, "resume", r.patchChunk(loc, 100, b.Data[100:]), http.StatusAccepted)
				expectStatus(t, "finish", r.do(http.MethodPut, withQuery(loc, "digest", b.Digest), nil, nil), http.StatusCreated)
				r.pullBlob("good/img", b)
				expectStatus(t, "delete the resumed blob", r.del("/v2/good/img/blobs/"+b.Digest), http.StatusAccepted)
			}},
		{name: "PUT of a chunked upload with a truncated body (raw)", code: "BLOB_UPLOAD_INVALID",
			run: inSession(func(r *testRegistry, loc string) response {
				raw := rawHTTP("PUT", withQuery(loc, "digest", payloadDigest), []string{
					"Content-Length: " + itoa(len(payload)), "Content-Type: application/octet-stream",
				}, payload[:10])
				return r.rawRequest(raw, true)
			}),
			after: cancelSession},
		{name: "manifest PUT with a truncated body (raw)",
			run: func(r *testRegistry) response {
				raw := rawHTTP("PUT", "/v2/good/img/manifests/trunc", []string{
					"Content-Length: " + itoa(len(good.Body)), "Content-Type: " + mtOCIManifest,
				}, good.Body[:len(good.Body)-20])
				return r.rawRequest(raw, true)
			},
			after: func(t *testing.T, r *testRegistry, _ response) {
				if g := r.get("/v2/good/img/manifests/trunc", nil); g.Status != http.StatusNotFound {
					t.Errorf("GET of the truncated manifest's tag: %d", g.Status)
				}
			}},
	}

	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			rr := r.in(t)
			// What a row must leave as it found it (each row against its own
			// starting point, so that one row's leftovers fail only that row).
			filesBefore := rr.blobFiles()
			uploadsBefore := rr.uploadEntries()
			catalogBefore := rr.catalog()
			tagsBefore, _ := rr.tags("good/img")
			resp := c.run(rr)
			switch {
			case c.status != 0 && resp.Status != c.status:
				t.Errorf("status %d, want %d; body %s", resp.Status, c.status, resp)
			case resp.Status < 400 || resp.Status >= 500:
				t.Errorf("status %d, want a 4xx; body %s", resp.Status, resp)
			}
			if c.code != "" {
				codes, err := decodeErrorCodes(resp)
				if err != nil || len(codes) == 0 || codes[0] != c.code {
					t.Errorf("error codes %v (%v), want %s; body %s", codes, err, c.code, resp)
				}
			} else if !strings.HasPrefix(c.name, "HEAD") {
				// Any error body must still be the spec's JSON error.
				if codes, err := decodeErrorCodes(resp); err != nil || len(codes) == 0 {
					t.Errorf("error body without a code (%v): %s", err, resp)
				}
			}
			if c.after != nil {
				c.after(t, rr, resp)
			}
			// Nothing left behind.
			if files := rr.blobFiles(); !sameFiles(files, filesBefore) {
				t.Errorf("blob files changed: %v, were %v", files, filesBefore)
			}
			if ups := rr.uploadEntries(); !equalSets(ups, uploadsBefore) {
				t.Errorf("uploads left behind: %v, were %v", ups, uploadsBefore)
			}
			if cat := rr.catalog(); !equalSets(cat, catalogBefore) {
				t.Errorf("catalog changed: %v, was %v", cat, catalogBefore)
			}
			if tags, _ := rr.tags("good/img"); !equalSets(tags, tagsBefore) {
				t.Errorf("tags of good/img changed: %v, were %v", tags, tagsBefore)
			}
		})
	}
	r.pull("good/img", "v1", good)
	r.expectTags("good/img", "v1")
	r.checkInvariants(baseline...)
}

// sessionOf is the upload session a row's run opened.
func sessionOf(resp response) string { return resp.Header.Get("X-Test-Location") }
