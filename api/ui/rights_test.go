package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
)

// A user without pull rights on a repository sees it nowhere: not in the
// list nor its count, not on the store's chart, and its pages (tags, a
// manifest, a tag's redirect, the delete confirmation) are the same 404
// as an unknown repository's.
func TestRightsHideRepositories(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	team := e.image("team/app", "v1", e.layer("team/app", 1000))
	secret := e.image("secret/vault", "v1", e.layer("secret/vault", 9000))
	e.image("public/base", "v1", e.layer("public/base", 500))

	for _, c := range []struct {
		user      string
		see, hide []string
	}{
		{"alice", []string{"team/app", "secret/vault", "public/base"}, nil},
		{"bob", []string{"public/base", "team/app"}, []string{"secret/vault"}},
		{"", []string{"public/base"}, []string{"team/app", "secret/vault"}},
	} {
		p := e.get("/ui/", c.user).want(t, http.StatusOK)
		got := p.all(`<tr data-repo="([^"]+)"`)
		if len(got) != len(c.see) {
			t.Errorf("%q sees %v, want %v", c.user, got, c.see)
		}
		if n := p.number(t, `<span id="total" data-n="(\d+)"`); n != int64(len(c.see)) {
			t.Errorf("%q: total %d, want %d", c.user, n, len(c.see))
		}
		store := e.get("/ui/store", c.user).want(t, http.StatusOK)
		if len(c.hide) > 0 {
			// The store-wide figures would tell what the hidden hold.
			store.lacks(t, `id="dedup"`)
			store.lacks(t, `id="cache"`)
		} else {
			store.has(t, `id="dedup"`)
		}
		for _, r := range c.see {
			store.has(t, `data-repo="`+r+`"`)
			e.get("/ui/r/"+r, c.user).want(t, http.StatusOK)
		}
		for _, r := range c.hide {
			p.lacks(t, r)
			store.lacks(t, r)
			e.get("/ui/r/"+r, c.user).want(t, http.StatusNotFound).lacks(t, r)
			e.get("/ui/r/"+r+":v1", c.user).want(t, http.StatusNotFound)
			e.get("/ui/delete?target="+r+":v1", c.user).want(t, http.StatusNotFound)
		}
	}
	e.get("/ui/r/secret/vault@"+secret.Digest, "bob").want(t, http.StatusNotFound).lacks(t, secret.Digest)
	e.get("/ui/r/team/app@"+team.Digest, "bob").want(t, http.StatusOK)
	// bob's 404 for a repository he may not pull is the page of one that
	// does not exist.
	hidden := e.get("/ui/r/secret/vault", "bob")
	absent := e.get("/ui/r/secret/nothing", "bob")
	if hidden.body != absent.body {
		t.Error("the 404 of a hidden repository differs from an unknown one's")
	}
}

// Wrong credentials are answered with a Basic challenge; /ui/login asks
// until valid ones come.
func TestLogin(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/ui/", nil)
	req.SetBasicAuth("alice", "wrong")
	p := e.do(req).want(t, http.StatusUnauthorized)
	if got := p.header.Get("Www-Authenticate"); got != `Basic realm="kvreg"` {
		t.Errorf("challenge %q", got)
	}
	e.get("/ui/login", "").want(t, http.StatusUnauthorized)
	if loc := e.get("/ui/login", "bob").want(t, http.StatusSeeOther).header.Get("Location"); loc != "/ui/" {
		t.Errorf("login goes to %q", loc)
	}
	e.get("/ui/", "bob").want(t, http.StatusOK).has(t, "bob")

	open := newEnv(t, api.Config{})
	open.get("/ui/login", "").want(t, http.StatusSeeOther)
}

// With nothing open to anonymous callers, the UI asks for credentials
// first, as /v2/ does.
func TestNoAnonymousAsks(t *testing.T) {
	cfg := api.Config{}
	cfg.Users = users(t, "alice")
	acc, err := newAccessAll("alice")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Access = acc
	e := newEnv(t, cfg)
	e.get("/ui/", "").want(t, http.StatusUnauthorized)
	e.get("/ui/", "alice").want(t, http.StatusOK)
}

// Delete links and the confirmation are there only for who may delete,
// never on a read-only server.
func TestDeleteLinksNeedRights(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	img := e.image("team/app", "v1", e.layer("team/app", 1000))
	links := []string{`class="delete"`, `id="delete-repo"`, `id="delete-image"`}
	for _, user := range []string{"alice", "carol"} {
		e.get("/ui/r/team/app", user).want(t, http.StatusOK).has(t, links[:2]...)
		e.get("/ui/r/team/app@"+img.Digest, user).want(t, http.StatusOK).has(t, links[2])
		e.get("/ui/delete?target=team/app:v1", user).want(t, http.StatusOK).has(t, `<form id="confirm-delete"`)
	}
	e.get("/ui/r/team/app", "bob").want(t, http.StatusOK).lacks(t, links...)
	e.get("/ui/r/team/app@"+img.Digest, "bob").want(t, http.StatusOK).lacks(t, links...)
	e.get("/ui/delete?target=team/app:v1", "bob").want(t, http.StatusForbidden).lacks(t, `confirm-delete`)

	ro := newEnv(t, withAuth(t, api.Config{ReadOnly: true}))
	img = ro.image("team/app", "v1", ro.layer("team/app", 1000))
	ro.get("/ui/r/team/app", "alice").want(t, http.StatusOK).lacks(t, links...)
	ro.get("/ui/r/team/app@"+img.Digest, "alice").want(t, http.StatusOK).lacks(t, links...)
	ro.get("/ui/delete?target=team/app:v1", "alice").want(t, http.StatusForbidden)
	tok := ro.get("/ui/", "alice").cookie(t)
	ro.post("alice", "team/app:v1", tok, tok, "").want(t, http.StatusForbidden)
	ro.get("/ui/r/team/app", "alice").want(t, http.StatusOK).has(t, `data-tag="v1"`)
}

// How many images share a layer counts, for each caller, only the
// repositories they may pull: the page is no oracle of what others hold.
func TestSharedLayerCountsVisibleRepositories(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	b := make([]byte, 2000)
	e.rnd.Read(b)
	d, n := e.blob("team/app", b)
	shared := descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d.String(), Size: n}
	e.blob("secret/vault", b)
	img := e.image("team/app", "v1", shared)
	e.image("secret/vault", "v1", shared)
	e.image("secret/vault", "v2", shared)
	row := func(user string) string {
		return e.get("/ui/r/team/app@"+img.Digest, user).want(t, http.StatusOK).body
	}
	if !strings.Contains(row("alice"), fmt.Sprintf(`data-digest="%s" data-size="%d" data-images="3"`, d, n)) {
		t.Error("alice, who may pull both repositories, is not told 3 images share the layer")
	}
	if !strings.Contains(row("bob"), fmt.Sprintf(`data-digest="%s" data-size="%d" data-images="1"`, d, n)) {
		t.Error("bob, who may not pull secret/vault, is told of its images")
	}
}
