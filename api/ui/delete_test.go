package ui_test

import (
	"github.com/kvreg/kvreg/refcount/policy"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// A POST of the delete form without the CSRF token, with a wrong one, or
// from another site is refused with 403 and changes nothing.
func TestDeleteRefusesForgedPosts(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	e.image("team/app", "v1", e.layer("team/app", 1000))
	tok := e.get("/ui/delete?target=team/app:v1", "alice").want(t, http.StatusOK).cookie(t)
	before, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	other := e.get("/ui/", "alice").cookie(t) // another browser's token
	if other == tok {
		t.Fatal("two fresh tokens are equal")
	}
	for name, c := range map[string]struct{ cookie, field, site string }{
		"no token":         {"", "", ""},
		"no field":         {tok, "", ""},
		"no cookie":        {"", tok, ""},
		"wrong field":      {tok, other, ""},
		"wrong cookie":     {other, tok, ""},
		"cross-site":       {tok, tok, "cross-site"},
		"same-site, other": {tok, tok, "same-site"},
	} {
		p := e.post("alice", "team/app:v1", c.cookie, c.field, c.site)
		if p.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, p.status)
		}
		p.lacks(t, `id="freed"`)
	}
	// An older browser says where the form came from by Origin alone.
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/delete",
		strings.NewReader(url.Values{"target": {"team/app:v1"}, "csrf": {tok}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	req.SetBasicAuth("alice", password("alice"))
	req.AddCookie(&http.Cookie{Name: "kvreg_ui_csrf", Value: tok})
	e.do(req).want(t, http.StatusForbidden)

	after, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	if before.Totals != after.Totals {
		t.Errorf("refused posts changed the store: %+v -> %+v", before.Totals, after.Totals)
	}
	e.get("/ui/r/team/app", "alice").want(t, http.StatusOK).has(t, `data-tag="v1"`)
	// bob may pull but not delete: the right token does not help him.
	e.post("bob", "team/app:v1", tok, tok, "").want(t, http.StatusForbidden)
	e.get("/ui/r/team/app", "alice").want(t, http.StatusOK).has(t, `data-tag="v1"`)
}

// The confirmation says exactly how many bytes the delete frees; the
// delete through the form frees those bytes from the store, keeping what
// other images share.
func TestDeleteFreesWhatItPromised(t *testing.T) {
	e := newEnv(t, withAuth(t, api.Config{}))
	shared := e.layer("team/app", 7000)
	e.image("team/app", "v1", shared, e.layer("team/app", 3000))
	e.image("team/app", "v2", shared)

	c := e.get("/ui/delete?target=team/app:v1", "carol").want(t, http.StatusOK)
	c.has(t, `<form id="confirm-delete" method="post" action="/ui/delete">`, `<button id="confirm" type="submit"`,
		`name="target" value="team/app:v1"`, `data-tag="team/app:v1"`)
	frees := c.number(t, `<span id="frees" data-bytes="(\d+)"`)
	field := c.all(`name="csrf" value="([^"]+)"`)
	tok := c.cookie(t)
	if len(field) != 1 || field[0] != tok {
		t.Fatalf("form token %v, cookie %q", field, tok)
	}
	plan, err := e.reg.RemovePlan("team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if frees != plan.ReclaimedBytes || frees < 3000 || frees >= 3000+7000 {
		t.Fatalf("confirmation promises %d bytes, plan %d", frees, plan.ReclaimedBytes)
	}
	before, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}

	d := e.post("carol", "team/app:v1", tok, tok, "same-origin").want(t, http.StatusOK)
	freed := d.number(t, `<span id="freed" data-bytes="(\d+)"`)
	after, err := e.reg.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	if freed != frees || before.Totals.BlobBytes-after.Totals.BlobBytes != frees {
		t.Errorf("promised %d, freed %d, the store lost %d bytes", frees, freed, before.Totals.BlobBytes-after.Totals.BlobBytes)
	}
	p := e.get("/ui/r/team/app", "carol").want(t, http.StatusOK)
	p.lacks(t, `data-tag="v1"`)
	p.has(t, `data-tag="v2"`)

	// A whole repository, the same way.
	c = e.get("/ui/delete?target=team/app", "alice").want(t, http.StatusOK)
	frees = c.number(t, `<span id="frees" data-bytes="(\d+)"`)
	tok = c.cookie(t)
	before = after
	e.post("alice", "team/app", tok, tok, "").want(t, http.StatusOK).has(t, `<span id="freed" data-bytes="`)
	if after, err = e.reg.Stats(0); err != nil {
		t.Fatal(err)
	}
	if before.Totals.BlobBytes-after.Totals.BlobBytes != frees || after.Totals.BlobBytes != 0 {
		t.Errorf("repository delete promised %d, the store lost %d (left %d)", frees, before.Totals.BlobBytes-after.Totals.BlobBytes, after.Totals.BlobBytes)
	}
	e.get("/ui/r/team/app", "alice").want(t, http.StatusNotFound)
}

// A pull-through cache's repository shows no delete, and its delete form
// is refused: its content is the upstream's.
func TestCachedRepositoryNoDelete(t *testing.T) {
	e := newEnvWith(t, api.Config{}, regtest.Options{CachePrefixes: []string{"hub"}})
	img := e.image("hub/library/base", "v1", e.layer("hub/library/base", 1000))
	links := []string{`class="delete"`, `id="delete-repo"`, `id="delete-image"`}
	e.get("/ui/r/hub/library/base", "").want(t, http.StatusOK).lacks(t, links...)
	e.get("/ui/r/hub/library/base@"+img.Digest, "").want(t, http.StatusOK).lacks(t, links...)
	e.get("/ui/delete?target=hub/library/base:v1", "").want(t, http.StatusForbidden)
	tok := e.get("/ui/", "").cookie(t)
	e.post("", "hub/library/base:v1", tok, tok, "").want(t, http.StatusForbidden)
	e.get("/ui/r/hub/library/base", "").want(t, http.StatusOK).has(t, `data-tag="v1"`)
}

// What a delete from the UI frees is counted in the metrics, as the
// operator's rm counts it.
func TestDeleteCountsReclaimedBytes(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.image("team/app", "v1", e.layer("team/app", 2500))
	c := e.get("/ui/delete?target=team/app:v1", "").want(t, http.StatusOK)
	frees := c.number(t, `<span id="frees" data-bytes="(\d+)"`)
	tok := c.cookie(t)
	e.post("", "team/app:v1", tok, tok, "").want(t, http.StatusOK)
	m := e.get("/metrics", "").want(t, http.StatusOK)
	if got := m.number(t, `(?m)^kvreg_reclaimed_bytes_total (\d+)$`); got != frees {
		t.Errorf("kvreg_reclaimed_bytes_total %d, the delete freed %d", got, frees)
	}
}

// A delete the store's rules refuse is a page saying why, not an error:
// an immutable tag (403), at the confirmation and at the form alike, and
// nothing goes.
func TestDeleteOfImmutableTagRefused(t *testing.T) {
	e := newEnvWith(t, api.Config{}, regtest.Options{Policies: &policy.Set{Immutables: []policy.Immutable{{Repos: []string{"prod/*"}, Tags: []string{"v*"}}}}})
	e.image("prod/app", "v1", e.layer("prod/app", 1000))
	c := e.get("/ui/delete?target=prod/app:v1", "").want(t, http.StatusForbidden)
	c.has(t, "immutable")
	tok := e.get("/ui/", "").cookie(t)
	e.post("", "prod/app:v1", tok, tok, "").want(t, http.StatusForbidden).has(t, "immutable")
	e.get("/ui/r/prod/app", "").want(t, http.StatusOK).has(t, `data-tag="v1"`)
}
