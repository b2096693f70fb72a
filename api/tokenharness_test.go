package api_test

// Helpers for the tests of the token flow: a registry in token mode with a
// settable clock, a token endpoint client, and tokens forged with kvreg's
// own key or others.

import (
	"crypto/x509"
	"encoding/json"
	mrand "math/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/api/authstore"
)

// tokenClock is a settable clock shared by the issuer, the verifier and
// the server.
type tokenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tokenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *tokenClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// storeRobots is the token endpoint's robot checker over the test
// registry's own store, set once the registry is open.
type storeRobots struct{ *authstore.Checker }

// tokenEnv is the token mode of a test registry: its key, clock and
// configuration.
type tokenEnv struct {
	key   *token.SigningKey
	clock *tokenClock
	tc    *api.TokenConfig
}

func newTokenEnv(t testing.TB, robots api.RobotChecker) *tokenEnv {
	t.Helper()
	key, err := token.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	clock := &tokenClock{now: time.Now().UTC().Truncate(time.Second)}
	iss, err := token.NewIssuer(token.IssuerConfig{Key: key, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(token.VerifierConfig{ValidName: api.ValidRepositoryName, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ver.SetOwnKeys(key)
	return &tokenEnv{key: key, clock: clock,
		tc: &api.TokenConfig{Issuer: iss, Verifier: ver, Robots: robots, Clock: clock.Now}}
}

// startTokenRegistry is a registry with the test users and rules in token
// mode.
func startTokenRegistry(t testing.TB, cfg api.Config, rules []auth.Rule, robots api.RobotChecker) (*testRegistry, *tokenEnv) {
	t.Helper()
	env := newTokenEnv(t, robots)
	cfg = authConfig(t, cfg, rules)
	cfg.Tokens = env.tc
	return startRegistry(t, regOptions{Config: cfg}), env
}

// tokenReply is the token endpoint's JSON answer.
type tokenReply struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// getToken asks GET /token for the scopes, with r's credentials (if any);
// extra are more query parameters.
func (r *testRegistry) getToken(scopes []string, extra ...string) response {
	r.t.Helper()
	q := url.Values{"service": {"kvreg"}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return r.get("/token?"+q.Encode(), nil)
}

// postToken sends the OAuth2 form to POST /token.
func (r *testRegistry) postToken(form url.Values) response {
	r.t.Helper()
	return r.do(http.MethodPost, "/token", hdr("Content-Type", "application/x-www-form-urlencoded"), []byte(form.Encode()))
}

func decodeToken(t testing.TB, resp response) tokenReply {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("token request: %s", resp)
	}
	var tr tokenReply
	if err := json.Unmarshal(resp.Body, &tr); err != nil {
		t.Fatalf("token reply %s: %v", resp.Body, err)
	}
	if tr.Token == "" || tr.Token != tr.AccessToken {
		t.Fatalf("token reply without token: %s", resp.Body)
	}
	return tr
}

// tokenFor is a token from GET /token for the scopes, as r's caller.
func (r *testRegistry) tokenFor(scopes ...string) string {
	r.t.Helper()
	return decodeToken(r.t, r.getToken(scopes)).Token
}

// bearer is the registry as seen by a client sending this token.
func (r *testRegistry) bearer(tok string) *testRegistry {
	return r.withAuthorization("Bearer " + tok)
}

// access is the access claim of one of env's tokens.
func (env *tokenEnv) access(t testing.TB, raw string) []token.Access {
	t.Helper()
	cl, err := env.tc.Verifier.Verify(raw)
	if err != nil {
		t.Fatalf("verify an issued token: %v", err)
	}
	return cl.Access
}

func accessString(as []token.Access) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

// forge signs claims with the key k (kid set to k's), header fields
// overridden by hdr.
func forge(t testing.TB, k *token.SigningKey, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	priv, err := x509.ParsePKCS8PrivateKey(k.MarshalPKCS8())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = k.KID()
	for n, v := range hdr {
		tok.Header[n] = v
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are the claims of a well-formed kvreg token valid at now,
// granting access.
func claims(now time.Time, access ...map[string]any) jwt.MapClaims {
	acc := []any{}
	for _, a := range access {
		acc = append(acc, a)
	}
	return jwt.MapClaims{
		"iss": "kvreg", "sub": "bob", "aud": "kvreg",
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Unix(), "iat": now.Unix(),
		"jti": "test", "access": acc,
	}
}

func repoAccess(name string, actions ...string) map[string]any {
	acts := []any{}
	for _, a := range actions {
		acts = append(acts, a)
	}
	return map[string]any{"type": "repository", "name": name, "actions": acts}
}

func testRand(seed int64) *mrand.Rand { return mrand.New(mrand.NewSource(seed)) }
