package browser

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// storedBytes is what the data directory's blob store holds, in bytes.
func storedBytes(t *testing.T, root string) int64 {
	t.Helper()
	st, err := testenv.Stored(root)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, v := range st {
		n += v
	}
	return n
}

func mustInt(t *testing.T, what, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", what, s)
	}
	return n
}

// TestBrowseAndDelete browses as alice from the repository list to a
// manifest, looks at an index and the store, deletes a tag through the
// confirmation, and checks the bytes the confirmation promised against the
// bytes the store gave back. Bob, who may pull public/* only, sees neither
// team/app nor its tags, and no delete button.
func TestBrowseAndDelete(t *testing.T) {
	srv := startSite(t)
	c := newContent(t)
	c.push(t, srv.Addr)
	b := newBrowser(t)
	alice := b.tab("alice")

	// The repository list.
	alice.visit(srv.URL+"/", "#repos")
	for _, repo := range []string{"public/base", "team/app"} {
		if alice.count(fmt.Sprintf("#repos tr[data-repo=%q]", repo)) != 1 {
			t.Fatalf("the repository list lacks %s", repo)
		}
	}
	if n := alice.attr("#total", "data-n"); n != "2" {
		t.Errorf("total repositories = %s, want 2", n)
	}
	alice.shot("repositories")

	// A repository.
	alice.follow(`#repos tr[data-repo="team/app"] a.repo`, "#tags")
	for _, tag := range []string{"1.0", "2.0", "multi"} {
		if alice.count(fmt.Sprintf("#tags tr[data-tag=%q]", tag)) != 1 {
			t.Fatalf("team/app's page lacks tag %s", tag)
		}
	}
	if alice.count(`#tags tr[data-tag="2.0"] a.delete`) != 1 || alice.count("#delete-repo") != 1 {
		t.Error("alice, who may delete, sees no delete link")
	}
	if s := alice.text(`#tags tr[data-tag="multi"]`); !strings.Contains(s, "linux/arm64/v8") || !strings.Contains(s, "linux/amd64") {
		t.Errorf("the index's row does not name its platforms: %q", s)
	}
	alice.shot("repository")

	// A manifest: config and layers, how many images share each, history,
	// labels, referrers as a tree, the pull command.
	alice.follow(`#tags tr[data-tag="1.0"] a.digest`, "#layers")
	if got := alice.text("#pull-command"); !strings.Contains(got, srv.Addr+"/team/app@"+c.app1Digest) {
		t.Errorf("pull command %q does not name %s/team/app@%s", got, srv.Addr, c.app1Digest)
	}
	if n := alice.count("#layers tr[data-digest]"); n != 3 {
		t.Errorf("layer rows (config included) = %d, want 3", n)
	}
	if got := alice.attr(fmt.Sprintf("#layers tr[data-digest=%q]", c.baseDigest), "data-images"); got != "5" {
		t.Errorf("the base layer is shared by %s images, want 5 (public/base:1, team/app 1.0 and 2.0, the index's two)", got)
	}
	if s := alice.text("#history"); !strings.Contains(s, "COPY app /usr/local/bin/app") {
		t.Errorf("history does not show the image's steps: %q", s)
	}
	if s := alice.text("#labels"); !strings.Contains(s, "platform") {
		t.Errorf("labels do not show the image's labels: %q", s)
	}
	sig := fmt.Sprintf("#referrers li[data-digest=%q]", c.sigDigest)
	if alice.count(sig) != 1 || alice.count(sig+fmt.Sprintf(" li[data-digest=%q]", c.attDigest)) != 1 {
		t.Errorf("referrers: want the signature with the attestation under it")
	}
	alice.shot("manifest")

	// An index, by its tag.
	alice.visit(srv.URL+"/ui/r/team/app:multi", "#children")
	if n := alice.count("#children tr"); n < 2 {
		t.Errorf("the index page lists %d children, want 2", n)
	}
	alice.shot("index")

	// The store.
	alice.follow("#nav-store", "#largest")
	if alice.count(`#largest rect[data-repo="team/app"]`) != 1 {
		t.Error("the chart of the largest repositories lacks team/app")
	}
	alice.shot("store")

	// Delete team/app:2.0 through the confirmation.
	alice.visit(srv.URL+"/ui/r/team/app", "#tags")
	alice.follow(`#tags tr[data-tag="2.0"] a.delete`, "#frees")
	promised := mustInt(t, "#frees", alice.attr("#frees", "data-bytes"))
	if promised != c.app2Frees {
		t.Errorf("the confirmation promises %d bytes, want %d (2.0's own layers and config)", promised, c.app2Frees)
	}
	alice.shot("delete-confirm")
	before := storedBytes(t, srv.Root)
	alice.follow("#confirm", "#freed")
	freed := mustInt(t, "#freed", alice.attr("#freed", "data-bytes"))
	after := storedBytes(t, srv.Root)
	t.Logf("promised %d bytes, the answer says %d freed, the store went from %d to %d bytes (-%d)", promised, freed, before, after, before-after)
	if freed != promised || before-after != promised {
		t.Errorf("promised %d bytes; freed %d; the store gave back %d", promised, freed, before-after)
	}
	alice.shot("delete-done")
	if st := status(t, srv.URL+"/v2/team/app/manifests/2.0", "alice"); st != http.StatusNotFound {
		t.Errorf("team/app:2.0 after the delete: %d, want 404", st)
	}

	// Bob sees public/base only.
	bob := b.tab("bob")
	bob.visit(srv.URL+"/ui/", "#repos")
	if bob.count(`#repos tr[data-repo="public/base"]`) != 1 || bob.count(`#repos tr[data-repo="team/app"]`) != 0 {
		t.Error("bob's list: want public/base and not team/app")
	}
	if n := bob.attr("#total", "data-n"); n != "1" {
		t.Errorf("bob's total = %s, want 1", n)
	}
	bob.shot("repositories-bob")
	bob.follow(`#repos tr[data-repo="public/base"] a.repo`, "#tags")
	if bob.count("a.delete")+bob.count("#delete-repo") != 0 {
		t.Error("bob, who may not delete, sees a delete link")
	}
	for _, p := range []string{"/ui/r/team/app", "/ui/r/team/app:1.0", "/ui/r/team/app@" + c.app1Digest, "/ui/delete?target=team/app:1.0"} {
		if st := status(t, srv.URL+p, "bob"); st != http.StatusNotFound {
			t.Errorf("bob GET %s: %d, want 404 (as if it did not exist)", p, st)
		}
	}
}

// status is the status of a GET as user.
func status(t *testing.T, u, user string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(user, user+"-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestForgedDelete posts the delete form without the CSRF token, with a
// wrong one, and from another origin: each is refused and the store keeps
// every byte and the tag.
func TestForgedDelete(t *testing.T) {
	srv := startSite(t)
	c := newContent(t)
	c.push(t, srv.Addr)
	before := storedBytes(t, srv.Root)
	post := func(what string, form url.Values, cookie, origin string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/delete", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("alice", "alice-pw")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "kvreg_ui_csrf", Value: cookie})
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", what, resp.StatusCode)
		}
	}
	const tok = "0123456789abcdef0123456789abcdef"
	post("no token", url.Values{"target": {"team/app:2.0"}}, "", "")
	post("no cookie", url.Values{"target": {"team/app:2.0"}, "csrf": {tok}}, "", "")
	post("a token that is not the cookie's", url.Values{"target": {"team/app:2.0"}, "csrf": {tok}}, strings.Repeat("f", 32), "")
	post("from another origin", url.Values{"target": {"team/app:2.0"}, "csrf": {tok}}, tok, "http://evil.example")
	if after := storedBytes(t, srv.Root); after != before {
		t.Errorf("the store went from %d to %d bytes after refused deletes", before, after)
	}
	if st := status(t, srv.URL+"/v2/team/app/manifests/2.0", "alice"); st != http.StatusOK {
		t.Errorf("team/app:2.0 after refused deletes: %d, want 200", st)
	}
}
