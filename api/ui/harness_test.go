package ui_test

// The pages are tested against a real registry (regtest: bbolt or
// PostgreSQL, a real blob store) served by the real API (api.New with the
// UI on) on an httptest server, with real htpasswd users. Content goes in
// through refcount's own write paths.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api/auth/authtest"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) { os.Exit(regtest.Run(m)) }

// password is each test user's password: the name with "-pw".
func password(user string) string { return authtest.Password(user) }

// users builds the accounts from a real htpasswd text (bcrypt, cheapest
// cost).
func users(t testing.TB, names ...string) *auth.Users {
	t.Helper()
	us, err := auth.ParseHtpasswd(strings.NewReader(authtest.Htpasswd(t, names...)), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// teamRules: alice does everything; bob pulls team/*; carol pulls and
// deletes team/*; anyone pulls public/*.
var teamRules = []auth.Rule{
	{Repos: []string{"*"}, Users: []string{"alice"}, Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}},
	{Repos: []string{"team/*"}, Users: []string{"bob"}, Actions: []auth.Action{auth.Pull}},
	{Repos: []string{"team/*"}, Users: []string{"carol"}, Actions: []auth.Action{auth.Pull, auth.Delete}},
	{Repos: []string{"public/*"}, Anonymous: true, Actions: []auth.Action{auth.Pull}},
}

// withAuth turns on Basic authentication with teamRules.
func withAuth(t testing.TB, cfg api.Config) api.Config {
	t.Helper()
	cfg.Users = users(t, "alice", "bob", "carol")
	acc, err := auth.NewAccess(teamRules, nil, cfg.Users.Has)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Access = acc
	return cfg
}

// env is a registry with its API and UI served over HTTP.
type env struct {
	t   testing.TB
	reg *regtest.Registry
	srv *httptest.Server
	rnd *rand.Rand
}

func newEnv(t testing.TB, cfg api.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, regtest.Options{})
}

func newEnvWith(t testing.TB, cfg api.Config, o regtest.Options) *env {
	t.Helper()
	reg := regtest.Open(t, o)
	cfg.UI = true
	srv := httptest.NewServer(api.New(reg.Registry, cfg))
	t.Cleanup(srv.Close)
	return &env{t: t, reg: reg, srv: srv, rnd: rand.New(rand.NewSource(1))}
}

// blob stores b in repo.
func (e *env) blob(repo string, b []byte) (digest.Digest, int64) {
	e.t.Helper()
	d := digest.FromBytes(b)
	if _, err := e.reg.PutBlob(repo, d, bytes.NewReader(b), int64(len(b)), 0); err != nil {
		e.t.Fatal(err)
	}
	return d, int64(len(b))
}

// layer stores size random bytes in repo.
func (e *env) layer(repo string, size int) descriptor {
	e.t.Helper()
	b := make([]byte, size)
	e.rnd.Read(b)
	d, n := e.blob(repo, b)
	return descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d.String(), Size: n}
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Platform     *platform         `json:"platform,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
}

type manifestJSON struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// config stores an image config with a history step and a label that
// name it.
func (e *env) config(repo, name string) descriptor {
	e.t.Helper()
	b := fmt.Sprintf(`{"architecture":"amd64","os":"linux","created":"2029-12-01T00:00:00Z",`+
		`"config":{"Labels":{"org.example.name":%q}},"rootfs":{"type":"layers","diff_ids":[]},`+
		`"history":[{"created":"2029-12-01T00:00:00Z","created_by":"/bin/sh -c build %s"}]}`, name, name)
	d, n := e.blob(repo, []byte(b))
	return descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: d.String(), Size: n}
}

// put pushes a manifest under tags (by digest when none) and returns its
// descriptor.
func (e *env) put(repo string, m manifestJSON, tags ...string) descriptor {
	e.t.Helper()
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	by := digest.FromBytes(body)
	if len(tags) > 0 {
		by = ""
	}
	res, err := e.reg.PutManifest(repo, by, tags, m.MediaType, body, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return descriptor{MediaType: m.MediaType, Digest: res.Digest.String(), Size: int64(len(body))}
}

// image pushes an image of a new config and the given layers.
func (e *env) image(repo, tag string, layers ...descriptor) descriptor {
	e.t.Helper()
	cfg := e.config(repo, repo+":"+tag)
	return e.put(repo, manifestJSON{MediaType: refcount.MediaTypeOCIManifest, Config: &cfg, Layers: layers,
		Annotations: map[string]string{"org.example.tag": tag}}, tag)
}

// page is an answer of the UI.
type page struct {
	status int
	header http.Header
	body   string
}

// get asks for path as user ("" anonymous) without following redirects.
func (e *env) get(path, user string) page {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password(user))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) page {
	e.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// post sends the delete form as user, with the cookie and field given
// ("" leaves one out), from origin (Sec-Fetch-Site value, "" for none).
func (e *env) post(user, target, cookie, field, fetchSite string) page {
	e.t.Helper()
	form := url.Values{"target": {target}}
	if field != "" {
		form.Set("csrf", field)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/delete", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, password(user))
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "kvreg_ui_csrf", Value: cookie})
	}
	if fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", fetchSite)
	}
	return e.do(req)
}

// want fails unless the page has status.
func (p page) want(t testing.TB, status int) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.status, status, p.body)
	}
	return p
}

func (p page) has(t testing.TB, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(p.body, s) {
			t.Errorf("page lacks %q; body:\n%s", s, p.body)
		}
	}
}

func (p page) lacks(t testing.TB, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if strings.Contains(p.body, s) {
			t.Errorf("page has %q, it should not", s)
		}
	}
}

// number reads the number the first match of pattern captures.
func (p page) number(t testing.TB, pattern string) int64 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("page lacks %s; body:\n%s", pattern, p.body)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// all lists what pattern's first group captures, over the page.
func (p page) all(pattern string) []string {
	var out []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// cookie is the CSRF cookie a page set.
func (p page) cookie(t testing.TB) string {
	t.Helper()
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "kvreg_ui_csrf" {
			return c.Value
		}
	}
	t.Fatalf("no kvreg_ui_csrf cookie set; headers %v", p.header)
	return ""
}

// newAccessAll lets the users do everything everywhere, and anonymous
// callers nothing.
func newAccessAll(users ...string) (*auth.Access, error) {
	return auth.NewAccess([]auth.Rule{{Repos: []string{"*"}, Users: users,
		Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}}}, nil, nil)
}
