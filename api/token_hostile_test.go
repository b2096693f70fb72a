package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/api/authstore"
)

// Hostile tokens at the HTTP level: each is answered 401 with the Bearer
// challenge on every write and on reads it does not cover, and nothing is
// written anywhere.
func TestTokenHostileTable(t *testing.T) {
	r, env := startTokenRegistry(t, api.Config{}, teamRules, nil)
	alice := r.as("alice")
	rng := testRand(61)
	img := randomOCIImage(rng, nil, 2<<10)
	alice.pushImage("team/app", "v1", img)
	secret := randomOCIImage(rng, nil, 2<<10)
	alice.pushImage("secret/app", "v1", secret)
	session := alice.startUpload("team/app")
	extra := randomLayer(rng, mtOCILayer, 1<<10)
	next := randomOCIImage(rng, nil, 1<<10)
	now := env.clock.Now()

	other, err := token.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(env.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	full := repoAccess("team/app", "pull", "push", "delete")
	with := func(c jwt.MapClaims, k string, v any) jwt.MapClaims { c[k] = v; return c }
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(now, full))
	hs.Header["kid"] = env.key.KID()
	hsTok, err := hs.SignedString(pubDER)
	if err != nil {
		t.Fatal(err)
	}
	es384 := jwt.NewWithClaims(jwt.SigningMethodES384, claims(now, full))
	es384.Header["kid"] = env.key.KID()
	es384Tok, err := es384.SignedString(p384)
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := env.tc.Issuer.IssueRefresh("alice", "cred-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []struct{ name, tok, reason string }{
		{"wrong signature", forge(t, other, claims(now, full), map[string]any{"kid": env.key.KID()}), "signature"},
		{"unknown key", forge(t, other, claims(now, full), nil), "unknown_key"},
		{"alg none", b64(map[string]any{"alg": "none", "typ": "JWT", "kid": env.key.KID()}) + "." + b64(claims(now, full)) + ".", "algorithm"},
		{"HS256 with the public key as secret", hsTok, "algorithm"},
		{"ES384 with our kid", es384Tok, "algorithm"},
		{"wrong aud", forge(t, env.key, with(claims(now, full), "aud", "other"), nil), "audience"},
		{"wrong iss", forge(t, env.key, with(claims(now, full), "iss", "evil"), nil), "issuer"},
		{"expired", forge(t, env.key, with(with(with(claims(now, full), "exp", now.Add(-time.Hour).Unix()), "iat", now.Add(-2*time.Hour).Unix()), "nbf", now.Add(-2*time.Hour).Unix()), nil), "expired"},
		{"not yet valid", forge(t, env.key, with(with(claims(now, full), "nbf", now.Add(time.Hour).Unix()), "iat", now.Add(time.Hour).Unix()), nil), "not_yet_valid"},
		{"injected separators in the access claim", forge(t, env.key, claims(now, repoAccess("team/app:pull repository:secret/app", "push")), nil), "bad_scope"},
		{"oversized", forge(t, env.key, with(claims(now, full), "jti", strings.Repeat("x", token.MaxTokenBytes)), nil), "too_large"},
		{"refresh token", refresh, "refresh_token"},
		{"garbage", "a.b.c", "malformed"},
	}
	// Well-formed tokens granting too little: refused as insufficient.
	narrow := []struct{ name, tok string }{
		{"token for secret/app", forge(t, env.key, claims(now, repoAccess("secret/app", "pull", "push", "delete")), nil)},
		{"pull token", forge(t, env.key, claims(now, repoAccess("team/app", "pull")), nil)},
		{"issued for carol", r.as("carol").tokenFor("repository:team/app:pull,push,delete")},
	}
	writes := []probe{
		{"put manifest", "PUT", "/v2/team/app/manifests/v2", next.Body, "push"},
		{"delete tag", "DELETE", "/v2/team/app/manifests/v1", nil, "delete"},
		{"delete blob", "DELETE", "/v2/team/app/blobs/" + img.Layers[0].Digest, nil, "delete"},
		{"start upload", "POST", "/v2/team/app/blobs/uploads/", nil, "push"},
		{"monolithic upload", "POST", "/v2/team/app/blobs/uploads/?digest=" + url.QueryEscape(extra.Digest), extra.Data, "push"},
		{"mount from secret", "POST", "/v2/team/app/blobs/uploads/?mount=" + url.QueryEscape(secret.Layers[0].Digest) + "&from=secret/app", nil, "push"},
		{"patch upload", "PATCH", session, extra.Data, "push"},
		{"finish upload", "PUT", withQuery(session, "digest", extra.Digest), extra.Data, "push"},
		{"cancel upload", "DELETE", session, nil, "push"},
		{"pull secret", "GET", "/v2/secret/app/manifests/v1", nil, "read"},
	}
	before := r.snapshot(t)
	check := func(name, tok string, wantErr string) {
		cr := r.bearer(tok)
		for _, p := range writes {
			if wantErr == "insufficient_scope" && p.class == "read" && strings.HasPrefix(name, "token for secret") {
				continue
			}
			resp := cr.do(p.method, p.path, hdr("Content-Type", mtOCIManifest), p.body)
			what := name + ": " + p.method + " " + p.name
			expectError(t, what, resp, http.StatusUnauthorized, "UNAUTHORIZED")
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm=`) || !strings.HasSuffix(got, `,error="`+wantErr+`"`) {
				t.Errorf("%s: WWW-Authenticate %q", what, got)
			}
		}
	}
	for _, h := range hostile {
		check(h.name, h.tok, "invalid_token")
	}
	for _, n := range narrow {
		check(n.name, n.tok, "insufficient_scope")
	}
	sameSnapshot(t, "hostile tokens", before, r.snapshot(t))
	// The blobs and tags are as they were.
	r.as("alice").pull("team/app", "v1", img)
	if tags, _ := r.as("alice").tags("team/app"); strings.Join(tags, ",") != "v1" {
		t.Errorf("team/app tags: %v", tags)
	}

	m := r.scrape()
	for _, h := range hostile {
		if m[`kvreg_tokens_refused_total{reason="`+h.reason+`"}`] == 0 {
			t.Errorf("%s: no refusal counted with reason %q", h.name, h.reason)
		}
	}
}

// A verified token is remembered until its exp and no longer: past it the
// token is checked again and refused as expired.
func TestTokenCacheExpiry(t *testing.T) {
	r, env := startTokenRegistry(t, api.Config{}, teamRules, nil)
	tok := r.as("bob").tokenFor("repository:team/app:pull")
	b := r.bearer(tok)
	for i := 0; i < 3; i++ {
		expectStatus(t, "GET /v2/ with a fresh token", b.get("/v2/", nil), http.StatusOK)
	}
	env.clock.advance(5*time.Minute + token.DefaultLeeway)
	resp := b.get("/v2/team/app/tags/list", nil)
	expectError(t, "an expired token", resp, http.StatusUnauthorized, "UNAUTHORIZED")
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(got, `scope="repository:team/app:pull",error="invalid_token"`) {
		t.Errorf("expired token: WWW-Authenticate %q", got)
	}
	expectMetric(t, r.scrape(), `kvreg_tokens_refused_total{reason="expired"}`, 1)
}

// Robots log in at /token with their secret: they get their own grant
// (and what anonymous callers get), never the catalog or a refresh token;
// a wrong secret, a revoked or expired robot get nothing.
func TestTokenRobots(t *testing.T) {
	robots := &storeRobots{}
	var logs syncBuffer
	r, env := startTokenRegistry(t, api.Config{Logger: newJSONLogger(&logs)}, teamRules, robots)
	robots.Checker = authstore.NewChecker(r.reg.DB(), env.clock.Now)
	now := env.clock.Now()
	secrets := map[string]string{}
	for _, c := range []struct {
		name, repos, actions, life string
		born                       time.Time
	}{
		{"ci", "team/*", "pull,push", "1d", now},
		{"old", "team/*", "pull", "1d", now},
		{"gone", "team/*", "pull", "1h", now.Add(-2 * time.Hour)},
	} {
		spec, err := authstore.ParseRobotSpec(c.name, c.repos, c.actions, c.life)
		if err != nil {
			t.Fatal(err)
		}
		nr, err := authstore.CreateRobot(r.reg.DB(), spec, c.born)
		if err != nil {
			t.Fatal(err)
		}
		secrets[c.name] = nr.Secret
	}
	if _, err := authstore.RevokeRobot(r.reg.DB(), "old", now); err != nil {
		t.Fatal(err)
	}
	ci := r.withAuthorization(basicHeader("ci", secrets["ci"]))
	scopes := []string{"repository:team/app:pull,push,delete repository:secret/app:pull repository:public/app:pull,push", "registry:catalog:*"}
	tr := decodeToken(t, ci.getToken(scopes, "offline_token", "true"))
	if got := accessString(env.access(t, tr.Token)); got != "repository:public/app:pull repository:team/app:pull,push" || tr.RefreshToken != "" {
		t.Errorf("robot granted %q, refresh token %q", got, tr.RefreshToken)
	}
	if rs, err := authstore.Robots(r.reg.DB()); err != nil || len(rs) != 3 || rs[0].Name != "ci" || rs[0].LastUsed == nil || !rs[0].LastUsed.Equal(now) {
		t.Errorf("robots after ci's login (its last use recorded): %+v %v", rs, err)
	}
	// The robot pushes with its token.
	img := randomOCIImage(testRand(62), nil, 1<<10)
	if resp := r.bearer(tr.Token).pushImage("team/app", "v1", img); resp.Status != http.StatusCreated {
		t.Fatalf("robot push: %s", resp)
	}
	for _, c := range []struct{ name, user, pass, reason string }{
		{"wrong secret", "ci", "kvreg_nope", "robot_secret"},
		{"revoked", "old", secrets["old"], "robot_revoked"},
		{"expired", "gone", secrets["gone"], "robot_expired"},
		{"secret without the prefix", "ci", strings.TrimPrefix(secrets["ci"], "kvreg_"), "credentials"},
	} {
		resp := r.withAuthorization(basicHeader(c.user, c.pass)).getToken(scopes)
		expectError(t, c.name, resp, http.StatusUnauthorized, "UNAUTHORIZED")
		expectMetric(t, r.scrape(), `kvreg_tokens_refused_total{reason="`+c.reason+`"}`, 1)
	}
	// POST as docker login -u ci -p SECRET does.
	decodeToken(t, r.postToken(url.Values{"grant_type": {"password"}, "username": {"ci"}, "password": {secrets["ci"]}, "service": {"kvreg"}, "client_id": {"docker"}}))
	m := r.scrape()
	expectMetric(t, m, `kvreg_tokens_issued_total{caller="robot",kind="access"}`, 2)

	// Every refusal is logged, at warn, with its reason; no secret or
	// token is.
	var reasons []string
	for _, l := range logs.lines(t) {
		if l["msg"] == "token refused" && l["level"] == "WARN" {
			reasons = append(reasons, l["reason"].(string))
		}
	}
	if got := strings.Join(reasons, ","); got != "robot_secret,robot_revoked,robot_expired,credentials" {
		t.Errorf("refusals logged: %s", got)
	}
	logs.mu.Lock()
	text := logs.b.String()
	logs.mu.Unlock()
	for _, secret := range []string{secrets["ci"], "kvreg_nope", secrets["old"], secrets["gone"], tr.Token[len(tr.Token)-40:]} {
		if strings.Contains(text, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
}
