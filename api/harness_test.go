package api_test

// The end-to-end harness: a registry from regtest (the backends
// KVREG_TEST_BACKENDS names, a clock the test moves, a deep fsck when the
// test ends) behind a real HTTP server on loopback, and helpers that speak
// the distribution API the way clients do. Nothing is mocked.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// Media types used by the tests.
const (
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtOCILayer       = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtOCIEmpty       = "application/vnd.oci.empty.v1+json"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// allManifestTypes is an Accept header listing every manifest type.
var allManifestTypes = strings.Join([]string{mtOCIManifest, mtOCIIndex, mtDockerManifest, mtDockerList}, ", ")

// ---- the registry under test ----

type regOptions struct {
	UploadGrace time.Duration // regtest's default when zero
	PinWindow   time.Duration // regtest's default when zero
	Blobs       string        // pins the blob store (regtest.Options.Blobs)
	Shared      bool          // regtest.Options.Shared: pins are rows
	Config      api.Config
	// CachePrefixes: regtest.Options.CachePrefixes, the mirrors' prefixes
	// of Config.Mirrors when nil.
	CachePrefixes []string
	Policies      *policy.Set // regtest.Options.Policies
}

// testRegistry is a registry from regtest (its backend, its clock, a deep
// fsck when the test ends) served over HTTP.
type testRegistry struct {
	t      testing.TB
	reg    *regtest.Registry
	srv    *httptest.Server
	client *http.Client
}

// startRegistry opens a registry for the test and serves the API over it
// on a loopback port until the test ends.
func startRegistry(t testing.TB, o regOptions) *testRegistry {
	t.Helper()
	prefixes := o.CachePrefixes
	if prefixes == nil {
		for _, m := range o.Config.Mirrors {
			prefixes = append(prefixes, m.Prefix)
		}
	}
	reg := regtest.Open(t, regtest.Options{UploadGrace: o.UploadGrace, PinWindow: o.PinWindow, Blobs: o.Blobs, Shared: o.Shared, CachePrefixes: prefixes, Policies: o.Policies})
	if o.Config.Logger == nil {
		// Errors behind a 500 go to stderr, so that a failed test says why.
		o.Config.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return serve(t, reg, api.New(reg.Registry, o.Config))
}

// startSeeded is what most tests begin with: a registry with the default
// options and the random source of the test's content, seeded so that
// every run pushes the same bytes.
func startSeeded(t testing.TB, seed int64) (*testRegistry, *rand.Rand) {
	t.Helper()
	return startRegistry(t, regOptions{}), rand.New(rand.NewSource(seed))
}

// serve serves h, a handler over reg, on a loopback port. The server stops
// before regtest checks and closes the registry: cleanups run last first.
func serve(t testing.TB, reg *regtest.Registry, h http.Handler) *testRegistry {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if s, ok := h.(*api.Server); ok {
		// Work a request left running (a cache fill in the background)
		// ends before the registry closes.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.Drain(ctx); err != nil {
				t.Errorf("drain: %v", err)
			}
		})
	}
	return &testRegistry{
		t:   t,
		reg: reg,
		srv: srv,
		client: &http.Client{
			Timeout: 60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// also serves h, another handler over the same registry, on its own
// loopback port until the test ends.
func (r *testRegistry) also(h http.Handler) *testRegistry {
	r.t.Helper()
	return serve(r.t, r.reg, h)
}

// in is the registry as a subtest sees it: its failures are the subtest's.
func (r *testRegistry) in(t testing.TB) *testRegistry {
	c := *r
	c.t = t
	return &c
}

// ---- HTTP ----

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	b := r.Body
	if len(b) > 300 {
		b = append(append([]byte(nil), b[:300]...), "..."...)
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// url turns a path (or a Location header, relative or absolute) into a URL.
func (r *testRegistry) url(p string) string {
	if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
		return p
	}
	return r.srv.URL + p
}

// do sends one request. body nil sends no body; hdr may be nil.
func (r *testRegistry) do(method, p string, hdr http.Header, body []byte) response {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.url(p), rd)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, p, err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return r.send(req)
}

func (r *testRegistry) send(req *http.Request) response {
	r.t.Helper()
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func (r *testRegistry) get(p string, h http.Header) response {
	return r.do(http.MethodGet, p, h, nil)
}

func (r *testRegistry) head(p string, h http.Header) response {
	return r.do(http.MethodHead, p, h, nil)
}

func (r *testRegistry) del(p string) response {
	return r.do(http.MethodDelete, p, nil, nil)
}

// rawRequest writes bytes to a fresh TCP connection to the server and reads
// one response: for requests Go's client would not send as they are (paths
// with "..", bodies shorter than their Content-Length). With closeWrite the
// connection's sending side is shut after the bytes, so the server sees the
// body end early.
func (r *testRegistry) rawRequest(raw []byte, closeWrite bool) response {
	r.t.Helper()
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		r.t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
	if closeWrite {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			r.t.Fatalf("close write: %v", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		r.t.Fatalf("raw response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// rawHTTP builds the bytes of an HTTP/1.1 request with the path exactly as given.
func rawHTTP(method, path string, headers []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// ---- assertions on responses ----

func expectStatus(t testing.TB, what string, resp response, want int) {
	t.Helper()
	if resp.Status != want {
		t.Fatalf("%s: status %d, want %d; body: %s", what, resp.Status, want, resp)
	}
}

// errorCodes decodes a spec error body.
func errorCodes(t testing.TB, resp response) []string {
	t.Helper()
	codes, err := decodeErrorCodes(resp)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return codes
}

// decodeErrorCodes decodes a spec error body: the codes of its errors.
func decodeErrorCodes(resp response) ([]string, error) {
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("error body is not JSON: %v; status %d, body: %q", err, resp.Status, resp.Body)
	}
	var codes []string
	for _, e := range body.Errors {
		codes = append(codes, e.Code)
	}
	return codes, nil
}

// expectError asserts the status and that the JSON body's errors[0].code is code.
func expectError(t testing.TB, what string, resp response, status int, code string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("%s: status %d, want %d (%s); body: %s", what, resp.Status, status, code, resp)
	}
	expectCode(t, what, resp, code)
}

func expectCode(t testing.TB, what string, resp response, code string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q, want application/json", what, ct)
	}
	codes := errorCodes(t, resp)
	if len(codes) == 0 || codes[0] != code {
		t.Fatalf("%s: error codes %v, want %s first; body: %s", what, codes, code, resp)
	}
}

// ---- content ----

// blob is content with its digest.
type blob struct {
	MediaType string
	Data      []byte
	Digest    string
}

func newBlob(mediaType string, data []byte) blob {
	return blob{MediaType: mediaType, Data: data, Digest: digest.FromBytes(data).String()}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// randomLayer is n random bytes as a layer blob of the given type.
func randomLayer(rng *rand.Rand, mediaType string, n int) blob {
	return newBlob(mediaType, randomBytes(rng, n))
}

// configBlob is a small image config, unique per call.
func configBlob(rng *rand.Rand, mediaType string) blob {
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Env":["SEED=%d"]},"rootfs":{"type":"layers","diff_ids":[]}}`, rng.Int63())
	return newBlob(mediaType, []byte(cfg))
}

// emptyConfig is the OCI empty descriptor's blob, "{}".
func emptyConfig() blob { return newBlob(mtOCIEmpty, []byte("{}")) }

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

func (b blob) desc() descriptor {
	return descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Data))}
}

// manifest is a manifest's bytes and everything it holds.
type manifest struct {
	MediaType string
	Body      []byte
	Digest    string
	Config    *blob
	Layers    []blob
	Children  []manifest
}

func (m manifest) desc() descriptor {
	return descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Body))}
}

// Blobs lists the blobs of an image manifest (config first).
func (m manifest) Blobs() []blob {
	var out []blob
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	return append(out, m.Layers...)
}

// AllBlobs lists the blobs of a manifest and of its children, recursively.
func (m manifest) AllBlobs() []blob {
	out := m.Blobs()
	for _, c := range m.Children {
		out = append(out, c.AllBlobs()...)
	}
	return out
}

func finish(mt string, v any) manifest {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return manifest{MediaType: mt, Body: body, Digest: digest.FromBytes(body).String()}
}

// imageOpts are the optional parts of an OCI image manifest.
type imageOpts struct {
	ArtifactType string
	Subject      *manifest
	Annotations  map[string]string
}

// ociImage builds an OCI image manifest.
func ociImage(config blob, layers []blob, o imageOpts) manifest {
	v := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType,omitempty"`
		Config        descriptor        `json:"config"`
		Layers        []descriptor      `json:"layers"`
		Subject       *descriptor       `json:"subject,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{SchemaVersion: 2, MediaType: mtOCIManifest, ArtifactType: o.ArtifactType, Config: config.desc(), Layers: []descriptor{}, Annotations: o.Annotations}
	for _, l := range layers {
		v.Layers = append(v.Layers, l.desc())
	}
	if o.Subject != nil {
		d := o.Subject.desc()
		v.Subject = &d
	}
	m := finish(mtOCIManifest, v)
	m.Config = &config
	m.Layers = layers
	return m
}

// dockerImage builds a Docker schema2 manifest.
func dockerImage(config blob, layers []blob) manifest {
	v := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: mtDockerManifest, Config: config.desc()}
	for _, l := range layers {
		v.Layers = append(v.Layers, l.desc())
	}
	m := finish(mtDockerManifest, v)
	m.Config = &config
	m.Layers = layers
	return m
}

// index builds an OCI index or a Docker manifest list of children.
func index(mediaType string, children ...manifest) manifest {
	v := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{SchemaVersion: 2, MediaType: mediaType, Manifests: []descriptor{}}
	archs := []string{"amd64", "arm64", "s390x", "ppc64le", "riscv64"}
	for i, c := range children {
		d := c.desc()
		d.Platform = &platform{Architecture: archs[i%len(archs)], OS: "linux"}
		v.Manifests = append(v.Manifests, d)
	}
	m := finish(mediaType, v)
	m.Children = children
	return m
}

// randomOCIImage is an OCI image of a fresh config, the shared layers
// given, and new random layers of the sizes given.
func randomOCIImage(rng *rand.Rand, shared []blob, sizes ...int) manifest {
	layers := append([]blob(nil), shared...)
	for _, n := range sizes {
		layers = append(layers, randomLayer(rng, mtOCILayer, n))
	}
	return ociImage(configBlob(rng, mtOCIConfig), layers, imageOpts{})
}

func randomDockerImage(rng *rand.Rand, sizes ...int) manifest {
	var layers []blob
	for _, n := range sizes {
		layers = append(layers, randomLayer(rng, mtDockerLayer, n))
	}
	return dockerImage(configBlob(rng, mtDockerConfig), layers)
}

// ---- push ----

// pushBlob uploads a blob in one POST ?digest= request.
func (r *testRegistry) pushBlob(repo string, b blob) {
	r.t.Helper()
	resp := r.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(b.Digest),
		hdr("Content-Type", "application/octet-stream"), b.Data)
	expectStatus(r.t, "monolithic upload of "+b.Digest, resp, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != b.Digest {
		r.t.Fatalf("monolithic upload: Docker-Content-Digest %q, want %q", got, b.Digest)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/v2/"+repo+"/blobs/"+b.Digest) {
		r.t.Fatalf("monolithic upload: Location %q", loc)
	}
}

// startUpload opens an upload session and returns its Location.
func (r *testRegistry) startUpload(repo string) string {
	r.t.Helper()
	resp := r.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	expectStatus(r.t, "start upload in "+repo, resp, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	if loc == "" {
		r.t.Fatalf("start upload: no Location")
	}
	return loc
}

// withQuery adds a query parameter to a Location that may already have some.
func withQuery(loc, k, v string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

// patchChunk sends one chunk with its Content-Range; it returns the response.
func (r *testRegistry) patchChunk(loc string, start int64, chunk []byte) response {
	r.t.Helper()
	return r.do(http.MethodPatch, loc, hdr(
		"Content-Type", "application/octet-stream",
		"Content-Range", fmt.Sprintf("%d-%d", start, start+int64(len(chunk))-1),
	), chunk)
}

// uploadChunks fills an open session with data in chunks and finishes it as b.
func (r *testRegistry) uploadChunks(loc string, b blob, chunk int) {
	r.t.Helper()
	var off int64
	for off < int64(len(b.Data)) {
		end := off + int64(chunk)
		if end > int64(len(b.Data)) {
			end = int64(len(b.Data))
		}
		resp := r.patchChunk(loc, off, b.Data[off:end])
		expectStatus(r.t, fmt.Sprintf("PATCH %d-%d of %s", off, end-1, b.Digest), resp, http.StatusAccepted)
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", end-1); got != want {
			r.t.Fatalf("PATCH: Range %q, want %q", got, want)
		}
		if nl := resp.Header.Get("Location"); nl != "" {
			loc = nl
		}
		off = end
	}
	resp := r.do(http.MethodPut, withQuery(loc, "digest", b.Digest), nil, nil)
	expectStatus(r.t, "PUT finishing "+b.Digest, resp, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != b.Digest {
		r.t.Fatalf("PUT finishing upload: Docker-Content-Digest %q, want %q", got, b.Digest)
	}
}

// pushBlobChunked uploads a blob by POST, PATCH chunks and PUT.
func (r *testRegistry) pushBlobChunked(repo string, b blob, chunk int) {
	r.t.Helper()
	r.uploadChunks(r.startUpload(repo), b, chunk)
}

// putManifest sends a manifest PUT and returns the response, whatever it is.
func (r *testRegistry) putManifest(repo, ref, contentType string, body []byte) response {
	r.t.Helper()
	return r.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, hdr("Content-Type", contentType), body)
}

// pushManifest PUTs a manifest and asserts it was stored under its digest.
func (r *testRegistry) pushManifest(repo, ref string, m manifest) response {
	r.t.Helper()
	resp := r.putManifest(repo, ref, m.MediaType, m.Body)
	expectStatus(r.t, "PUT manifest "+repo+":"+ref, resp, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != m.Digest {
		r.t.Fatalf("PUT manifest: Docker-Content-Digest %q, want %q", got, m.Digest)
	}
	return resp
}

// pushImage uploads every blob of an image manifest (monolithic POSTs)
// and PUTs the manifest under ref.
func (r *testRegistry) pushImage(repo, ref string, m manifest) response {
	r.t.Helper()
	for _, b := range m.Blobs() {
		r.pushBlob(repo, b)
	}
	return r.pushManifest(repo, ref, m)
}

// pushImageLikeDocker pushes as docker does: HEAD each blob, upload only
// those that are missing, then PUT the manifest.
func (r *testRegistry) pushImageLikeDocker(repo, ref string, m manifest) (uploaded int) {
	r.t.Helper()
	for _, b := range m.Blobs() {
		resp := r.head("/v2/"+repo+"/blobs/"+b.Digest, nil)
		switch resp.Status {
		case http.StatusOK:
			continue
		case http.StatusNotFound:
			r.pushBlobChunked(repo, b, 1<<20)
			uploaded++
		default:
			r.t.Fatalf("HEAD blob %s: %s", b.Digest, resp)
		}
	}
	r.pushManifest(repo, ref, m)
	return uploaded
}

// ---- pull ----

// pullManifest GETs a manifest and asserts it is m's exact bytes.
func (r *testRegistry) pullManifest(repo, ref string, m manifest) {
	r.t.Helper()
	resp := r.get("/v2/"+repo+"/manifests/"+ref, hdr("Accept", allManifestTypes))
	expectStatus(r.t, "GET manifest "+repo+":"+ref, resp, http.StatusOK)
	if !bytes.Equal(resp.Body, m.Body) {
		r.t.Fatalf("GET manifest %s:%s: bytes differ from those pushed", repo, ref)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != m.Digest {
		r.t.Fatalf("GET manifest %s:%s: Docker-Content-Digest %q, want %q", repo, ref, got, m.Digest)
	}
	if got := resp.Header.Get("Content-Type"); got != m.MediaType {
		r.t.Fatalf("GET manifest %s:%s: Content-Type %q, want %q", repo, ref, got, m.MediaType)
	}
}

// pullBlob GETs a blob and asserts its exact bytes.
func (r *testRegistry) pullBlob(repo string, b blob) {
	r.t.Helper()
	resp := r.get("/v2/"+repo+"/blobs/"+b.Digest, nil)
	expectStatus(r.t, "GET blob "+repo+"@"+b.Digest, resp, http.StatusOK)
	if !bytes.Equal(resp.Body, b.Data) {
		r.t.Fatalf("GET blob %s: %d bytes, not the %d pushed", b.Digest, len(resp.Body), len(b.Data))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != b.Digest {
		r.t.Fatalf("GET blob: Docker-Content-Digest %q, want %q", got, b.Digest)
	}
}

// pull pulls m by ref, its children by digest, and every blob, checking
// every byte.
func (r *testRegistry) pull(repo, ref string, m manifest) {
	r.t.Helper()
	r.pullManifest(repo, ref, m)
	for _, b := range m.Blobs() {
		r.pullBlob(repo, b)
	}
	for _, c := range m.Children {
		r.pull(repo, c.Digest, c)
	}
}

// expectManifestGone asserts a manifest reference answers 404 MANIFEST_UNKNOWN
// to GET and 404 to HEAD.
func (r *testRegistry) expectManifestGone(repo, ref string) {
	r.t.Helper()
	resp := r.get("/v2/"+repo+"/manifests/"+ref, nil)
	if resp.Status != http.StatusNotFound {
		r.t.Fatalf("GET manifest %s:%s: %s, want 404", repo, ref, resp)
	}
	codes := errorCodes(r.t, resp)
	if len(codes) == 0 || (codes[0] != "MANIFEST_UNKNOWN" && codes[0] != "NAME_UNKNOWN") {
		r.t.Fatalf("GET manifest %s:%s: codes %v, want MANIFEST_UNKNOWN", repo, ref, codes)
	}
	if h := r.head("/v2/"+repo+"/manifests/"+ref, nil); h.Status != http.StatusNotFound {
		r.t.Fatalf("HEAD manifest %s:%s: %d, want 404", repo, ref, h.Status)
	}
}

// expectBlobGone asserts HEAD and GET of a blob answer 404 in repo.
func (r *testRegistry) expectBlobGone(repo string, b blob) {
	r.t.Helper()
	if h := r.head("/v2/"+repo+"/blobs/"+b.Digest, nil); h.Status != http.StatusNotFound {
		r.t.Fatalf("HEAD blob %s@%s: %d, want 404", repo, b.Digest, h.Status)
	}
	resp := r.get("/v2/"+repo+"/blobs/"+b.Digest, nil)
	expectError(r.t, "GET blob "+b.Digest, resp, http.StatusNotFound, "BLOB_UNKNOWN")
}

// ---- listings ----

func (r *testRegistry) catalog() []string {
	r.t.Helper()
	resp := r.get("/v2/_catalog", nil)
	expectStatus(r.t, "catalog", resp, http.StatusOK)
	var v struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		r.t.Fatalf("catalog body: %v", err)
	}
	return v.Repositories
}

// tags lists a repository's tags; nil and the status if it is not 200.
func (r *testRegistry) tags(repo string) ([]string, int) {
	r.t.Helper()
	resp := r.get("/v2/"+repo+"/tags/list", nil)
	if resp.Status != http.StatusOK {
		return nil, resp.Status
	}
	var v struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		r.t.Fatalf("tags body: %v", err)
	}
	if v.Name != repo {
		r.t.Fatalf("tags list name %q, want %q", v.Name, repo)
	}
	return v.Tags, resp.Status
}

func (r *testRegistry) expectTags(repo string, want ...string) {
	r.t.Helper()
	got, status := r.tags(repo)
	if status != http.StatusOK {
		r.t.Fatalf("tags of %s: status %d", repo, status)
	}
	if !equalSets(got, want) {
		r.t.Fatalf("tags of %s: %v, want %v", repo, got, want)
	}
}

// ---- invariants through HTTP and on disk ----

// pullAnyRef pulls a reference without knowing what it is: the manifest's
// digest must be that of its bytes, and every blob and child it names must
// be served with the digest and size its descriptor says.
func (r *testRegistry) pullAnyRef(repo, ref string, seen map[string]bool) {
	r.t.Helper()
	resp := r.get("/v2/"+repo+"/manifests/"+ref, hdr("Accept", allManifestTypes))
	expectStatus(r.t, "GET manifest "+repo+":"+ref, resp, http.StatusOK)
	alg := digest.SHA256
	if hd := digest.Digest(resp.Header.Get("Docker-Content-Digest")); hd.Algorithm().Available() {
		alg = hd.Algorithm()
	}
	d := alg.FromBytes(resp.Body).String()
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		r.t.Fatalf("GET manifest %s:%s: Docker-Content-Digest %q, bytes are %q", repo, ref, got, d)
	}
	if seen[d] {
		return
	}
	seen[d] = true
	var v struct {
		Config    *descriptor  `json:"config"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		r.t.Fatalf("manifest %s:%s: %v", repo, ref, err)
	}
	descs := v.Layers
	if v.Config != nil {
		descs = append([]descriptor{*v.Config}, descs...)
	}
	for _, ds := range descs {
		b := r.get("/v2/"+repo+"/blobs/"+ds.Digest, nil)
		expectStatus(r.t, "GET blob "+ds.Digest+" of "+repo+":"+ref, b, http.StatusOK)
		want := digest.Digest(ds.Digest)
		if got := want.Algorithm().FromBytes(b.Body).String(); got != ds.Digest || int64(len(b.Body)) != ds.Size {
			r.t.Fatalf("blob %s of %s:%s: served %d bytes of digest %s", ds.Digest, repo, ref, len(b.Body), got)
		}
	}
	for _, c := range v.Manifests {
		r.pullAnyRef(repo, c.Digest, seen)
	}
}

// checkInvariants asserts, through HTTP, that every tag of every
// repository in the catalog pulls; that the blob directory holds exactly the
// blobs expected; that no upload is left; and that the registry's own
// invariant checker finds no problem.
func (r *testRegistry) checkInvariants(expected ...[]blob) {
	r.t.Helper()
	for _, repo := range r.catalog() {
		tags, status := r.tags(repo)
		if status != http.StatusOK {
			r.t.Fatalf("repository %s is in the catalog but tags/list says %d", repo, status)
		}
		seen := map[string]bool{}
		for _, tag := range tags {
			r.pullAnyRef(repo, tag, seen)
		}
	}
	r.expectBlobFiles(expected...)
	r.expectNoUploads()
	r.checkRegistry()
}

// checkRegistry runs refcount's invariant checker (deep) and requires zero
// problems. It reports to r.t, which may be a subtest's (see in), where
// regtest's own checks report to the test that opened the registry.
func (r *testRegistry) checkRegistry() {
	r.t.Helper()
	probs, err := r.reg.Check(true)
	if err != nil {
		r.t.Fatalf("Check: %v", err)
	}
	for _, p := range probs {
		r.t.Errorf("Check: %s", p)
	}
	if len(probs) > 0 {
		r.t.FailNow()
	}
}

// blobFiles lists the blobs the registry's store holds: digest -> size; an
// object whose name is not a digest comes as "?" and its name.
func (r *testRegistry) blobFiles() map[string]int64 {
	r.t.Helper()
	out := map[string]int64{}
	err := r.reg.Blobs().Walk(func(d digest.Digest, name string, size int64) error {
		if d == "" {
			out["?"+name] = size
			return nil
		}
		out[string(d)] = size
		return nil
	})
	if err != nil {
		r.t.Fatalf("walk blobs: %v", err)
	}
	return out
}

// expectBlobFiles asserts the blob store holds exactly the union of the
// blobs given, each of its size.
func (r *testRegistry) expectBlobFiles(sets ...[]blob) {
	r.t.Helper()
	want := map[string]int64{}
	for _, s := range sets {
		for _, b := range s {
			want[b.Digest] = int64(len(b.Data))
		}
	}
	got := r.blobFiles()
	var problems []string
	for d, n := range want {
		g, ok := got[d]
		switch {
		case !ok:
			problems = append(problems, "missing file "+d)
		case g != n:
			problems = append(problems, fmt.Sprintf("file %s has %d bytes, want %d", d, g, n))
		}
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			problems = append(problems, "unexpected file "+d)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		r.t.Fatalf("blob store:\n  %s", strings.Join(problems, "\n  "))
	}
}

func (r *testRegistry) hasBlobFile(b blob) bool {
	r.t.Helper()
	ok, err := r.reg.Blobs().Has(digest.Digest(b.Digest))
	if err != nil {
		r.t.Fatalf("has %s: %v", b.Digest, err)
	}
	return ok
}

// expectBlobsFreed asserts that the blobs given are gone: from the store,
// from the storage under it, and from repo as HTTP sees it.
func (r *testRegistry) expectBlobsFreed(repo string, bs []blob) {
	r.t.Helper()
	r.expectStoredGone(bs)
	for _, b := range bs {
		if r.hasBlobFile(b) {
			r.t.Errorf("%s is still stored after its only image was deleted", b.Digest)
		}
	}
	for _, b := range bs {
		r.expectBlobGone(repo, b)
	}
}

// storedSize is the size of what the registry stores, in two measures. The
// first is the sum of the sizes the blob store's Walk reports, which every
// driver answers. The second is the space taken below kvreg, read there
// (regtest.StoredBytes): on the local store the files under the data
// directory, the database aside; on S3 every object (and multipart part)
// in the bucket, as the server keeps them. Uploads in progress count. It
// is what a delete must give back.
func (r *testRegistry) storedSize() (walked, stored int64) {
	r.t.Helper()
	err := r.reg.Blobs().Walk(func(_ digest.Digest, _ string, size int64) error {
		walked += size
		return nil
	})
	if err != nil {
		r.t.Fatalf("walk blobs: %v", err)
	}
	return walked, r.reg.StoredBytes()
}

// expectStoredGone asserts that nothing the blob store keeps, read below
// kvreg (regtest.StoredFiles: the data directory, or the bucket on the S3
// server), still holds the bytes of the blobs given: freed means gone from
// the storage, not just from kvreg's index of it.
func (r *testRegistry) expectStoredGone(sets ...[]blob) {
	r.t.Helper()
	bySize := map[int64][]blob{}
	for _, s := range sets {
		for _, b := range s {
			bySize[int64(len(b.Data))] = append(bySize[int64(len(b.Data))], b)
		}
	}
	for name, size := range r.reg.StoredFiles() {
		cands := bySize[size]
		if len(cands) == 0 {
			continue
		}
		data := r.reg.ReadStored(name)
		for _, b := range cands {
			if bytes.Equal(data, b.Data) {
				r.t.Errorf("the blob store still holds the %d bytes of freed blob %s, in %s", size, b.Digest, name)
			}
		}
	}
}

// uploadEntries lists the uploads the registry's store holds.
func (r *testRegistry) uploadEntries() []string {
	r.t.Helper()
	ids, err := r.reg.Blobs().Uploads()
	if err != nil {
		r.t.Fatalf("uploads: %v", err)
	}
	return ids
}

// expectNoUploads asserts no upload session is left.
func (r *testRegistry) expectNoUploads() {
	r.t.Helper()
	if ents := r.uploadEntries(); len(ents) != 0 {
		r.t.Fatalf("uploads left behind: %v", ents)
	}
}

// sweep ends every expired lease and returns how many there were.
func (r *testRegistry) sweep() int {
	r.t.Helper()
	total := 0
	for {
		n, err := r.reg.Sweep(1000)
		if err != nil {
			r.t.Fatalf("Sweep: %v", err)
		}
		total += n
		if n < 1000 {
			return total
		}
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func blobsOf(ms ...manifest) []blob {
	var out []blob
	for _, m := range ms {
		out = append(out, m.AllBlobs()...)
	}
	return out
}

// random32Hex is an upload id no session has.
func random32Hex(rng *rand.Rand) string {
	return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
}

func itoa(n int) string { return strconv.Itoa(n) }
