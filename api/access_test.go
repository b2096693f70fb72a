package api_test

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/api"
)

// A cross-repository mount takes blobs only from repositories the caller
// may pull; anything else is answered as an ordinary upload session (202),
// exactly as for a blob that does not exist, and links nothing.
func TestMountNeedsPullOnTheSource(t *testing.T) {
	r := startRegistry(t, regOptions{Config: authConfig(t, api.Config{}, teamRules)})
	alice, bob := r.as("alice"), r.as("bob")
	rng := rand.New(rand.NewSource(61))
	secret := randomOCIImage(rng, nil, 2<<10)
	team := randomOCIImage(rng, nil, 2<<10)
	alice.pushImage("secret/app", "v1", secret)
	alice.pushImage("team/app", "v1", team)
	secretLayer, teamLayer := secret.Layers[0].Digest, team.Layers[0].Digest

	mount := func(who *testRegistry, repo, d, from string) response {
		p := "/v2/" + repo + "/blobs/uploads/?mount=" + url.QueryEscape(d)
		if from != "" {
			p += "&from=" + url.QueryEscape(from)
		}
		return who.do(http.MethodPost, p, nil, nil)
	}
	refused := func(what string, resp response, repo, d string) {
		t.Helper()
		expectStatus(t, what, resp, http.StatusAccepted)
		loc := resp.Header.Get("Location")
		if !strings.Contains(loc, "/blobs/uploads/") || resp.Header.Get("Docker-Content-Digest") != "" {
			t.Fatalf("%s: Location %q, Docker-Content-Digest %q: not an upload session", what, loc, resp.Header.Get("Docker-Content-Digest"))
		}
		expectStatus(t, what+": blob not visible", alice.head("/v2/"+repo+"/blobs/"+d, nil), http.StatusNotFound)
		expectStatus(t, what+": cancel", bob.del(loc), http.StatusNoContent)
	}
	refused("bob mounts from secret/app", mount(bob, "team/new", secretLayer, "secret/app"), "team/new", secretLayer)
	refused("bob mounts a secret blob without from", mount(bob, "team/new", secretLayer, ""), "team/new", secretLayer)
	refused("bob mounts from a repository that lacks the blob", mount(bob, "team/new", secretLayer, "team/app"), "team/new", secretLayer)

	expectStatus(t, "bob mounts from team/app", mount(bob, "team/new", teamLayer, "team/app"), http.StatusCreated)
	expectStatus(t, "mounted blob", bob.head("/v2/team/new/blobs/"+teamLayer, nil), http.StatusOK)
	expectStatus(t, "bob mounts a team blob without from", mount(bob, "team/other", teamLayer, ""), http.StatusCreated)
	// The same blob in a repository bob may read and one he may not: the
	// readable one serves.
	shared := randomLayer(rng, mtOCILayer, 1<<10)
	alice.pushBlob("secret/app", shared)
	alice.pushBlob("team/app", shared)
	expectStatus(t, "shared blob", mount(bob, "team/third", shared.Digest, ""), http.StatusCreated)
	// alice may read everything.
	expectStatus(t, "alice mounts from secret/app", mount(alice, "team/fourth", secretLayer, "secret/app"), http.StatusCreated)
	r.checkRegistry()
}

// GET /v2/ is how docker login checks credentials: 401 with the challenge
// without them or with wrong ones, 200 with right ones.
func TestBaseAsksForCredentials(t *testing.T) {
	r := startRegistry(t, regOptions{Config: authConfig(t, api.Config{}, teamRules)})
	for _, c := range []struct {
		who  *testRegistry
		name string
		want int
	}{
		{r, "anonymous", 401},
		{r.withAuthorization(basicHeader("alice", "nope")), "wrong password", 401},
		{r.as("alice"), "alice", 200},
		{r.as("carol"), "carol", 200},
	} {
		resp := c.who.get("/v2/", nil)
		if resp.Status != c.want {
			t.Errorf("%s: GET /v2/: %s, want %d", c.name, resp, c.want)
		}
		if c.want == 401 {
			expectCode(t, c.name, resp, "UNAUTHORIZED")
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="kvreg"` {
				t.Errorf("%s: WWW-Authenticate %q", c.name, got)
			}
		}
		if resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("%s: no Docker-Distribution-API-Version", c.name)
		}
	}
	// Without any anonymous rule, anonymous callers get 401 everywhere,
	// even for routes that do not exist.
	closed := startRegistry(t, regOptions{Config: authConfig(t, api.Config{}, teamRules[:3])})
	for _, p := range []string{"/v2/_catalog", "/v2/public/app/tags/list", "/v2/nothing/here", "/v2/Bad/Name/tags/list"} {
		expectError(t, "anonymous "+p, closed.get(p, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	}
}

func TestReadOnlyRefusesWritesClearly(t *testing.T) {
	r := startRegistry(t, regOptions{Config: authConfig(t, api.Config{ReadOnly: true}, teamRules)})
	resp := r.as("alice").do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
	expectError(t, "upload on a read-only registry", resp, http.StatusMethodNotAllowed, "UNSUPPORTED")
	if !bytes.Contains(resp.Body, []byte("read-only")) {
		t.Errorf("message does not say read-only: %s", resp.Body)
	}
	// Rights come first: carol is still told she may not push.
	expectError(t, "carol on a read-only registry", r.as("carol").do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil), http.StatusForbidden, "DENIED")
}

// syncBuffer is a log destination safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines decodes the JSON log lines written so far.
func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

// One access log line per request, with the request id that the response
// echoes (the client's, when it sent a sane one).
func TestRequestIDAndAccessLog(t *testing.T) {
	var logs syncBuffer
	cfg := authConfig(t, api.Config{Logger: newJSONLogger(&logs)}, teamRules)
	r := startRegistry(t, regOptions{Config: cfg})
	alice := r.as("alice")
	img := randomOCIImage(rand.New(rand.NewSource(71)), nil, 4<<10)
	alice.pushImage("team/app", "v1", img)

	resp := alice.get("/v2/team/app/manifests/v1", hdr("X-Request-Id", "req-42.a:b_c", "Accept", allManifestTypes))
	expectStatus(t, "get", resp, http.StatusOK)
	if got := resp.Header.Get("X-Request-Id"); got != "req-42.a:b_c" {
		t.Fatalf("X-Request-Id %q, want the client's", got)
	}
	gen := r.get("/v2/team/app/tags/list", hdr("X-Request-Id", "has spaces and \"quotes\""))
	id := gen.Header.Get("X-Request-Id")
	if len(id) != 32 || strings.ContainsAny(id, " \"") {
		t.Fatalf("generated X-Request-Id %q", id)
	}

	lines := logs.lines(t)
	var requests []map[string]any
	for _, l := range lines {
		if l["msg"] == "request" {
			requests = append(requests, l)
		}
	}
	// 3 blob uploads, the manifest, the GET and the anonymous GET.
	if want := len(img.Blobs()) + 3; len(requests) != want {
		t.Fatalf("%d access log lines, want %d:\n%v", len(requests), want, requests)
	}
	get := requests[len(requests)-2]
	for k, want := range map[string]any{
		"id": "req-42.a:b_c", "method": "GET", "path": "/v2/team/app/manifests/v1", "route": "manifest",
		"status": float64(200), "bytes_out": float64(len(img.Body)), "user": "alice", "proto": "HTTP/1.1",
	} {
		if get[k] != want {
			t.Errorf("access log %s = %v, want %v (line %v)", k, get[k], want, get)
		}
	}
	if _, ok := get["duration"]; !ok {
		t.Errorf("access log without duration: %v", get)
	}
	anon := requests[len(requests)-1]
	if anon["id"] != id || anon["status"] != float64(401) || anon["user"] != "" {
		t.Errorf("anonymous line: %v", anon)
	}
	put := requests[len(requests)-3]
	if put["method"] != "PUT" || put["bytes_in"] != float64(len(img.Body)) || put["status"] != float64(201) {
		t.Errorf("manifest PUT line: %v", put)
	}
}

// /healthz says the process answers; /readyz that the database does.
// Neither asks for credentials.
func TestHealthAndReadiness(t *testing.T) {
	r := startRegistry(t, regOptions{Config: authConfig(t, api.Config{}, teamRules[:3])})
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp := r.get(p, nil); resp.Status != 200 || string(resp.Body) != "ok\n" {
			t.Errorf("%s: %d %q", p, resp.Status, resp.Body)
		}
	}
	if err := r.reg.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.get("/readyz", nil).Status; st != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database closed: %d, want 503", st)
	}
	if st := r.get("/healthz", nil).Status; st != 200 {
		t.Errorf("/healthz with the database closed: %d, want 200", st)
	}
	// Open the store again, as a restart does, so that it is checked and
	// closed like every other when the test ends.
	r.reg.Reopen()
}
