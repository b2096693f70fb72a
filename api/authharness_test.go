package api_test

// Helpers for the tests of authentication, access rules, limits and
// observability: users in a real htpasswd (bcrypt, cheapest cost), a
// registry with rules, clients that log in, and a snapshot of every file
// under a directory to prove that refused requests wrote nothing.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api/auth/authtest"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// testUsers are the accounts of the access tests; each password is the
// user's name with "-pw".
var testUsers = []string{"alice", "bob", "carol"}

func password(user string) string { return authtest.Password(user) }

// htpasswdUsers builds the users from a real htpasswd text.
func htpasswdUsers(t testing.TB, users ...string) *auth.Users {
	t.Helper()
	us, err := auth.ParseHtpasswd(strings.NewReader(authtest.Htpasswd(t, users...)), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// teamRules: alice does everything; bob pulls and pushes team/*; carol
// only pulls team/*; anyone pulls public/*.
var teamRules = []auth.Rule{
	{Repos: []string{"*"}, Users: []string{"alice"}, Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}},
	{Repos: []string{"team/*"}, Groups: []string{"devs"}, Actions: []auth.Action{auth.Pull, auth.Push}},
	{Repos: []string{"team/*"}, Users: []string{"carol"}, Actions: []auth.Action{auth.Pull}},
	{Repos: []string{"public/*"}, Anonymous: true, Actions: []auth.Action{auth.Pull}},
}

// authConfig is cfg with the test users and rules.
func authConfig(t testing.TB, cfg api.Config, rules []auth.Rule) api.Config {
	t.Helper()
	users := htpasswdUsers(t, testUsers...)
	access, err := auth.NewAccess(rules, map[string][]string{"devs": {"bob"}}, users.Has)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users, cfg.Access = users, access
	return cfg
}

// basicAuth adds an Authorization header to every request.
type basicAuth struct {
	header string
	base   http.RoundTripper
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", b.header)
	return b.base.RoundTrip(req)
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// withAuthorization is the registry as seen by a client that sends this
// Authorization header ("" sends none).
func (r *testRegistry) withAuthorization(h string) *testRegistry {
	c := *r
	cl := *r.client
	if h != "" {
		cl.Transport = basicAuth{header: h, base: http.DefaultTransport}
	}
	c.client = &cl
	return &c
}

// as is the registry as seen by a logged-in user.
func (r *testRegistry) as(user string) *testRegistry {
	return r.withAuthorization(basicHeader(user, password(user)))
}

// snapshot is every file and directory under a directory: relative path ->
// kind, size and sha256 of the content.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case e.IsDir():
			out[rel] = "dir"
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			out[rel] = fmt.Sprintf("%d bytes %s", len(b), hex.EncodeToString(s[:8]))
		default:
			out[rel] = e.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// snapshot is what could change under the registry, seen from t: the
// blobs and uploads its store lists (on every backend), every file and
// directory under the data directory's parent, where a path that escaped
// its place would write on the local disk, and with blobs on S3 every
// object in the bucket, as the server keeps them.
func (r *testRegistry) snapshot(t testing.TB) map[string]string {
	t.Helper()
	rt := r.in(t)
	out := snapshot(t, filepath.Dir(r.reg.Root))
	if r.reg.Backend.Blob != regtest.BlobsLocal {
		for name, n := range r.reg.StoredFiles() {
			out["bucket: "+name] = fmt.Sprintf("%d bytes", n)
		}
	}
	for d, n := range rt.blobFiles() {
		out["store: blob "+d] = fmt.Sprintf("%d bytes", n)
	}
	for _, id := range rt.uploadEntries() {
		out["store: upload "+id] = "upload"
	}
	return out
}

// sameSnapshot fails the test with the differences.
func sameSnapshot(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			diffs = append(diffs, "new: "+p+" ("+v+")")
		} else if w != v {
			diffs = append(diffs, "changed: "+p+" ("+w+" -> "+v+")")
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, "gone: "+p)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("%s changed files:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
