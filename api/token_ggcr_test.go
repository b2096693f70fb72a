package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kvreg/kvreg/api"
)

// go-containerregistry's remote package follows the token flow as docker
// does: with authentication on, an anonymous pull of a public repository
// works with no credentials, an anonymous push is refused, a user pushes
// where the rules let it and not elsewhere, with nothing written.
func TestTokenFlowWithGoContainerregistry(t *testing.T) {
	r, _ := startTokenRegistry(t, api.Config{}, teamRules, nil)
	host := strings.TrimPrefix(r.srv.URL, "http://")
	ref := func(s string) name.Reference {
		rf, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}
	as := func(user string) remote.Option {
		if user == "" {
			return remote.WithAuth(authn.Anonymous)
		}
		return remote.WithAuth(&authn.Basic{Username: user, Password: password(user)})
	}
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	if err := remote.Write(ref("public/app:v1"), img, as("alice")); err != nil {
		t.Fatalf("alice pushes public/app: %v", err)
	}
	// Anonymous pull: manifest, config and layers.
	got, err := remote.Image(ref("public/app:v1"), as(""))
	if err != nil {
		t.Fatalf("anonymous pull of public/app: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %v, want %v", d, want)
	}
	ls, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("anonymous layer pull: %v", err)
		}
		rc.Close()
	}

	before := r.snapshot(t)
	other, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ user, repo string }{
		{"", "public/app:v2"}, {"", "team/app:v1"}, {"carol", "team/app:v1"}, {"bob", "secret/app:v1"},
	} {
		err := remote.Write(ref(c.repo), other, as(c.user))
		var te *transport.Error
		if !errors.As(err, &te) || (te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden) {
			t.Errorf("push of %s as %q: %v, want 401 or 403", c.repo, c.user, err)
		}
	}
	sameSnapshot(t, "refused pushes", before, r.snapshot(t))
	if _, err := remote.Image(ref("team/app:v1"), as("")); err == nil {
		t.Error("anonymous pull of team/app worked")
	}

	if err := remote.Write(ref("team/app:v1"), other, as("bob")); err != nil {
		t.Fatalf("bob pushes team/app: %v", err)
	}
	if _, err := remote.Image(ref("team/app:v1"), as("carol")); err != nil {
		t.Fatalf("carol pulls team/app: %v", err)
	}
	// A cross-repository mount as ggcr does it: bob reads public/app, and
	// its layers are mounted into team/copy instead of uploaded.
	if err := remote.Write(ref("team/copy:v1"), got, as("bob")); err != nil {
		t.Fatalf("bob copies public/app into team/copy: %v", err)
	}
	m := r.scrape()
	// A mount answers 201 at the upload start; an upload 202.
	if m[`kvreg_http_requests_total{method="POST",route="upload_start",status="201"}`] == 0 {
		t.Error("no layer was mounted from public/app")
	}
	if m[`kvreg_tokens_issued_total{caller="anonymous",kind="access"}`] == 0 || m[`kvreg_tokens_issued_total{caller="user",kind="access"}`] == 0 {
		t.Error("tokens issued not counted")
	}
}
