package api_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
)

// The token endpoint grants the scope asked for narrowed to the rules, per
// caller and per action; refuses wrong credentials (401), a wrong service
// and a malformed scope (400); hands out refresh tokens on request, and
// takes them back for new access tokens while their user exists.
func TestTokenEndpoint(t *testing.T) {
	r, env := startTokenRegistry(t, api.Config{}, teamRules, nil)
	bob, anon := r.as("bob"), r
	scopes := []string{"repository:team/app:pull,push", "repository:public/app:pull,push repository:secret/app:pull", "registry:catalog:*"}
	for _, c := range []struct {
		name string
		reg  *testRegistry
		want string
	}{
		{"anonymous", anon, "repository:public/app:pull"},
		{"bob", bob, "registry:catalog:* repository:public/app:pull repository:team/app:pull,push"},
		{"carol", r.as("carol"), "registry:catalog:* repository:public/app:pull repository:team/app:pull"},
		{"alice", r.as("alice"), "registry:catalog:* repository:public/app:pull,push repository:secret/app:pull repository:team/app:pull,push"},
	} {
		tr := decodeToken(t, c.reg.getToken(scopes))
		if got := accessString(env.access(t, tr.Token)); got != c.want {
			t.Errorf("%s: granted %q, want %q", c.name, got, c.want)
		}
		if tr.ExpiresIn != 300 || tr.RefreshToken != "" {
			t.Errorf("%s: expires_in %d, refresh token %q", c.name, tr.ExpiresIn, tr.RefreshToken)
		}
		if at, err := time.Parse(time.RFC3339, tr.IssuedAt); err != nil || !at.Equal(env.clock.Now()) {
			t.Errorf("%s: issued_at %q (%v), want %v", c.name, tr.IssuedAt, err, env.clock.Now())
		}
	}
	// No scope at all: a token granting nothing (what docker login asks).
	if got := env.access(t, bob.tokenFor()); len(got) != 0 {
		t.Errorf("no scope: granted %v", got)
	}
	// "*" is every action the caller has.
	if got := accessString(env.access(t, r.as("alice").tokenFor("repository:team/app:*"))); got != "repository:team/app:delete,pull,push" {
		t.Errorf("alice asks *: %q", got)
	}

	// Refusals.
	for _, c := range []struct {
		name   string
		resp   response
		status int
		code   string
	}{
		{"wrong password", r.withAuthorization(basicHeader("bob", "nope")).getToken(scopes), 401, "UNAUTHORIZED"},
		{"unknown user", r.withAuthorization(basicHeader("mallory", "x")).getToken(scopes), 401, "UNAUTHORIZED"},
		{"not basic", r.withAuthorization("Bearer x.y.z").getToken(scopes), 401, "UNAUTHORIZED"},
		{"other account", bob.getToken(scopes, "account", "alice"), 401, "UNAUTHORIZED"},
		{"wrong service", bob.getToken(scopes, "service", "other"), 400, "UNSUPPORTED"},
		{"injected separator", bob.getToken([]string{"repository:team/app:pull\nrepository:secret/app:push"}), 400, "UNSUPPORTED"},
		{"extra colon", bob.getToken([]string{"repository:team/app:push:pull"}), 400, "UNSUPPORTED"},
		{"bad name", bob.getToken([]string{"repository:Team/App:pull"}), 400, "UNSUPPORTED"},
		{"unknown type", bob.getToken([]string{"registry:secret:*"}), 400, "UNSUPPORTED"},
		{"post wrong password", r.postToken(url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"nope"}, "service": {"kvreg"}, "client_id": {"docker"}}), 401, "UNAUTHORIZED"},
		{"post bad grant", r.postToken(url.Values{"grant_type": {"client_credentials"}, "service": {"kvreg"}}), 400, "UNSUPPORTED"},
		{"post refresh garbage", r.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y.z"}, "service": {"kvreg"}}), 401, "UNAUTHORIZED"},
	} {
		expectError(t, c.name, c.resp, c.status, c.code)
	}

	// offline_token: a refresh token for users, none for anonymous callers.
	if tr := decodeToken(t, anon.getToken(scopes, "offline_token", "true")); tr.RefreshToken != "" {
		t.Error("anonymous caller got a refresh token")
	}
	tr := decodeToken(t, bob.getToken(scopes, "offline_token", "true"))
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token with offline_token=true")
	}
	// A refresh token is no access token.
	resp := r.bearer(tr.RefreshToken).get("/v2/", nil)
	expectError(t, "refresh token on /v2/", resp, 401, "UNAUTHORIZED")
	// POST, as docker login: password grant with access_type=offline...
	form := url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {password("bob")},
		"service": {"kvreg"}, "client_id": {"docker"}, "access_type": {"offline"}, "scope": {"repository:team/app:pull,push"}}
	pt := decodeToken(t, r.postToken(form))
	if pt.RefreshToken == "" || pt.Scope != "repository:team/app:pull,push" {
		t.Fatalf("POST password grant: refresh %q, scope %q", pt.RefreshToken, pt.Scope)
	}
	// ...then the refresh grant, as docker does for each later push.
	rt := decodeToken(t, r.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pt.RefreshToken},
		"service": {"kvreg"}, "client_id": {"docker"}, "scope": {"repository:team/app:pull,push repository:secret/app:pull"}}))
	if got := accessString(env.access(t, rt.Token)); got != "repository:team/app:pull,push" || rt.RefreshToken != "" {
		t.Errorf("refresh grant: granted %q, refresh token %q", got, rt.RefreshToken)
	}
	// An access token is no refresh token.
	expectError(t, "access token as refresh token", r.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.Token}}), 401, "UNAUTHORIZED")

	// The same keys behind a server whose htpasswd no longer has bob: his
	// refresh token gives nothing.
	cfg := api.Config{Users: htpasswdUsers(t, "alice"), Tokens: env.tc}
	cfg.Access, _ = auth.NewAccess([]auth.Rule{teamRules[0], teamRules[3]}, nil, nil)
	other := r.also(api.New(r.reg.Registry, cfg))
	expectError(t, "refresh token of a removed user",
		other.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pt.RefreshToken}, "service": {"kvreg"}}), 401, "UNAUTHORIZED")

	// ...and behind one whose htpasswd has bob with his password set
	// again (a new bcrypt hash, though the password is the same): his
	// refresh token from before gives nothing, and signing in again
	// gives one that works there.
	cfg = api.Config{Users: htpasswdUsers(t, "alice", "bob"), Tokens: env.tc}
	cfg.Access, _ = auth.NewAccess(teamRules[:2], map[string][]string{"devs": {"bob"}}, nil)
	reset := r.also(api.New(r.reg.Registry, cfg))
	refreshForm := func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {"kvreg"}, "scope": {"repository:team/app:pull"}}
	}
	resp = reset.postToken(refreshForm(pt.RefreshToken))
	expectError(t, "refresh token from before the password was set again", resp, 401, "UNAUTHORIZED")
	if !strings.Contains(resp.String(), "sign in again") {
		t.Errorf("refused refresh token: %s, want it to say to sign in again", resp)
	}
	again := decodeToken(t, reset.postToken(form))
	if got := accessString(env.access(t, decodeToken(t, reset.postToken(refreshForm(again.RefreshToken))).Token)); got != "repository:team/app:pull" {
		t.Errorf("refresh token after signing in again grants %q", got)
	}
	expectMetric(t, reset.scrape(), `kvreg_tokens_refused_total{reason="credential_changed"}`, 1)

	m := r.scrape()
	expectMetric(t, m, `kvreg_tokens_issued_total{caller="user",kind="refresh"}`, 2)
	expectMetric(t, m, `kvreg_tokens_issued_total{caller="anonymous",kind="access"}`, 2)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="credentials"}`, 4)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="scope"}`, 4)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="service"}`, 1)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="account"}`, 1)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="not_refresh"}`, 1)
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="refresh_token"}`, 1)
}

// Challenges name the realm, the service and the scope the route needs,
// and say insufficient_scope when a valid token lacks the right.
func TestTokenChallenges(t *testing.T) {
	r, _ := startTokenRegistry(t, api.Config{}, teamRules, nil)
	realm := `Bearer realm="` + r.srv.URL + `/token",service="kvreg"`
	pullTok := r.as("bob").tokenFor("repository:team/app:pull")
	emptyTok := r.tokenFor()
	for _, c := range []struct {
		name, method, path, auth string
		status                   int
		challenge                string
	}{
		{"base anonymous", "GET", "/v2/", "", 401, realm},
		{"base with an empty token", "GET", "/v2/", "Bearer " + emptyTok, 200, ""},
		{"base with basic", "GET", "/v2/", basicHeader("carol", password("carol")), 200, ""},
		{"base wrong basic", "GET", "/v2/", basicHeader("carol", "x"), 401, realm},
		{"pull anonymous", "GET", "/v2/team/app/manifests/v1", "", 401, realm + `,scope="repository:team/app:pull"`},
		{"push anonymous", "POST", "/v2/team/app/blobs/uploads/", "", 401, realm + `,scope="repository:team/app:pull,push"`},
		{"delete anonymous", "DELETE", "/v2/team/app/manifests/v1", "", 401, realm + `,scope="repository:team/app:delete"`},
		{"catalog anonymous", "GET", "/v2/_catalog", "", 401, realm + `,scope="registry:catalog:*"`},
		{"public pull anonymous", "GET", "/v2/public/app/tags/list", "", 404, ""},
		{"push with a pull token", "POST", "/v2/team/app/blobs/uploads/", "Bearer " + pullTok, 401, realm + `,scope="repository:team/app:pull,push",error="insufficient_scope"`},
		{"catalog with a pull token", "GET", "/v2/_catalog", "Bearer " + pullTok, 401, realm + `,scope="registry:catalog:*",error="insufficient_scope"`},
		{"garbage token", "GET", "/v2/team/app/tags/list", "Bearer nope", 401, realm + `,scope="repository:team/app:pull",error="invalid_token"`},
		{"basic user lacking a right", "POST", "/v2/secret/app/blobs/uploads/", basicHeader("carol", password("carol")), 403, ""},
	} {
		resp := r.withAuthorization(c.auth).do(c.method, c.path, nil, nil)
		if resp.Status != c.status {
			t.Errorf("%s: %s, want %d", c.name, resp, c.status)
			continue
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != c.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, c.challenge)
		}
		if c.status == 401 {
			expectCode(t, c.name, resp, "UNAUTHORIZED")
		}
	}

	// A configured realm and service; and the scheme a trusted proxy saw.
	env := newTokenEnv(t, nil)
	env.tc.Realm, env.tc.Service = "https://auth.example/token", "registry.example"
	cfg := authConfig(t, api.Config{}, teamRules)
	cfg.Tokens = env.tc
	fixed := r.also(api.New(r.reg.Registry, cfg))
	if got := fixed.get("/v2/", nil).Header.Get("WWW-Authenticate"); got != `Bearer realm="https://auth.example/token",service="registry.example"` {
		t.Errorf("configured realm: %q", got)
	}
	expectError(t, "the default service at a registry.example server", fixed.getToken(nil), 400, "UNSUPPORTED")
	cfg = authConfig(t, api.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, teamRules)
	cfg.Tokens = newTokenEnv(t, nil).tc
	proxied := r.also(api.New(r.reg.Registry, cfg))
	resp := proxied.get("/v2/", hdr("X-Forwarded-Proto", "https"))
	if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="https://`+strings.TrimPrefix(proxied.srv.URL, "http://")+`/token",service="kvreg"`; got != want {
		t.Errorf("behind a trusted proxy: %q, want %q", got, want)
	}
	resp = r.get("/v2/", hdr("X-Forwarded-Proto", "https"))
	if got := resp.Header.Get("WWW-Authenticate"); got != realm {
		t.Errorf("X-Forwarded-Proto from an untrusted peer: %q", got)
	}
}
