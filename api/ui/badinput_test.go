package ui_test

import (
	"net/http"
	"testing"

	"github.com/kvreg/kvreg/api"
)

// Malformed names, digests and targets are 404 pages (or 405 for a method
// a page does not take), never a 500.
func TestBadInputIsNotFound(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.image("team/app", "v1", e.layer("team/app", 100))
	for _, path := range []string{
		"/ui/r/", "/ui/r/team/app@", "/ui/r/team/app@sha256:zz", "/ui/r/team/app@md5:00", "/ui/r/team/app:",
		"/ui/r/team/app:nope", "/ui/r/Team/App", "/ui/r/team/../app", "/ui/r/team/app:a:b",
		"/ui/delete", "/ui/delete?target=", "/ui/delete?target=team/app@sha256:zz", "/ui/delete?target=team/app:nope",
		"/ui/delete?target=nothing", "/ui/static/", "/ui/static/../templates/layout.html",
	} {
		p := e.get(path, "")
		if p.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, p.status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/store", nil)
	e.do(req).want(t, http.StatusMethodNotAllowed)
}
