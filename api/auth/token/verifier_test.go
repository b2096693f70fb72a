package token

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIssueVerify(t *testing.T) {
	f := newFixture(t)
	access := []Access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}
	raw, issued, err := f.iss.Issue("alice", access, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ver.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, issued) {
		t.Fatalf("verified %+v, issued %+v", got, issued)
	}
	want := Claims{
		Issuer: "kvreg", Subject: "alice", Audience: []string{"kvreg"},
		Expires: t0.Add(5 * time.Minute), NotBefore: t0, IssuedAt: t0,
		ID: got.ID, Access: access,
	}
	if !reflect.DeepEqual(got, want) || len(got.ID) != 22 {
		t.Fatalf("claims %+v, want %+v", got, want)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if !strings.Contains(string(hdr), `"kid":"`+f.k.KID()+`"`) || !strings.Contains(string(hdr), `"alg":"ES256"`) {
		t.Fatalf("header %s", hdr)
	}

	// Anonymous, granting nothing.
	raw, _, err = f.iss.Issue("", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.ver.Verify(raw); err != nil || got.Subject != "" || len(got.Access) != 0 {
		t.Fatalf("anonymous: %+v, %v", got, err)
	}
	if _, _, err := f.iss.Issue("alice", nil, 0); !errors.Is(err, ErrConfig) {
		t.Fatalf("zero ttl: %v", err)
	}
}

func TestRefreshToken(t *testing.T) {
	f := newFixture(t)
	refresh, _, err := f.iss.IssueRefresh("alice", "cred-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.ver.VerifyRefresh(refresh)
	if err != nil || !c.Refresh || c.Subject != "alice" || c.Credential != "cred-1" {
		t.Fatalf("refresh: %+v, %v", c, err)
	}
	if _, err := f.ver.Verify(refresh); !errors.Is(err, ErrRefreshToken) || Reason(err) != "refresh_token" {
		t.Fatalf("refresh as access: %v", err)
	}
	access, _, _ := f.iss.Issue("alice", nil, time.Minute)
	if _, err := f.ver.VerifyRefresh(access); !errors.Is(err, ErrNotRefresh) || Reason(err) != "not_refresh" {
		t.Fatalf("access as refresh: %v", err)
	}
	if _, _, err := f.iss.IssueRefresh("", "cred-1", time.Hour); err == nil {
		t.Fatal("anonymous refresh token issued")
	}
	if _, _, err := f.iss.IssueRefresh("alice", "", time.Hour); err == nil {
		t.Fatal("refresh token bound to no credential issued")
	}
}

// TestHostileTokens: every token here is refused, with its own reason.
func TestHostileTokens(t *testing.T) {
	f := newFixture(t)
	kid := map[string]any{"kid": f.k.KID()}
	priv := f.k.priv
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(t0)
		change(c)
		return c
	}
	good := forge(t, jwt.SigningMethodES256, priv, kid, claimsAt(t0))
	if _, err := f.ver.Verify(good); err != nil {
		t.Fatalf("the untouched forged token is refused: %v", err)
	}
	parts := strings.Split(good, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(f.k.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	other := newKey(t)
	grant := func(typ, name string, actions ...any) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) {
			c["access"] = []any{map[string]any{"type": typ, "name": name, "actions": actions}}
		}
	}
	big := make([]Access, 300)
	for i := range big {
		big[i] = Access{Type: "repository", Name: strings.Repeat("a", 20), Actions: []string{"pull"}}
	}
	bigTok, _, err := f.iss.Issue("alice", big, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, _ := f.iss.IssueRefresh("alice", "cred-1", time.Minute)

	cases := []struct {
		name  string
		raw   string
		want  error
		label string
	}{
		{"signed by another key under our kid", forge(t, jwt.SigningMethodES256, other.priv, kid, claimsAt(t0)), ErrSignature, "signature"},
		{"claims swapped under a valid signature",
			parts[0] + "." + strings.Split(forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "team/app", "push"))), ".")[1] + "." + parts[2],
			ErrSignature, "signature"},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["sub"] = "bob" })), ".")[2], ErrSignature, "signature"},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrSignature, "signature"},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"HS256 keyed with the public key PEM", forge(t, jwt.SigningMethodHS256, pubPEM, kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"HS256 keyed with the public key DER", forge(t, jwt.SigningMethodHS256, pubDER, kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"RS256 under an EC kid", forge(t, jwt.SigningMethodRS256, testRSA(t), kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"ES384 under a P-256 kid", forge(t, jwt.SigningMethodES384, ecKey(t, elliptic.P384()), kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"EdDSA under an EC kid", forge(t, jwt.SigningMethodEdDSA, edKey(t), kid, claimsAt(t0)), ErrAlgorithm, "algorithm"},
		{"unknown alg", "eyJhbGciOiJYWVoiLCJ0eXAiOiJKV1QifQ." + parts[1] + "." + parts[2], ErrAlgorithm, "algorithm"},
		{"wrong aud", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["aud"] = "other-registry" })), ErrAudience, "audience"},
		{"no aud", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "aud") })), ErrAudience, "audience"},
		{"wrong iss", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["iss"] = "evil" })), ErrIssuer, "issuer"},
		{"no iss", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "iss") })), ErrIssuer, "issuer"},
		{"expired", forge(t, jwt.SigningMethodES256, priv, kid, claimsAt(t0.Add(-6*time.Minute))), ErrExpired, "expired"},
		{"no exp", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "exp") })), ErrMalformed, "malformed"},
		{"not yet valid", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() })), ErrNotYetValid, "not_yet_valid"},
		{"issued in the future", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Minute).Unix() })), ErrNotYetValid, "not_yet_valid"},
		{"oversized junk", strings.Repeat("a", MaxTokenBytes+1), ErrTooLarge, "too_large"},
		{"oversized, validly signed", bigTok, ErrTooLarge, "too_large"},
		{"injected separators in name", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "a:pull,push repository:b", "pull"))), ErrBadScope, "bad_scope"},
		{"injected separators in action", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "a", "pull,push"))), ErrBadScope, "bad_scope"},
		{"traversal name", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "../etc", "pull"))), ErrBadScope, "bad_scope"},
		{"uppercase name", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "Team/App", "pull"))), ErrBadScope, "bad_scope"},
		{"unknown type", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("admin", "all", "*"))), ErrBadScope, "bad_scope"},
		{"unknown action", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "a", "admin"))), ErrBadScope, "bad_scope"},
		{"no actions", forge(t, jwt.SigningMethodES256, priv, kid, with(grant("repository", "a"))), ErrBadScope, "bad_scope"},
		{"access not a list", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["access"] = "repository:a:push" })), ErrMalformed, "malformed"},
		{"refresh token as access token", refresh, ErrRefreshToken, "refresh_token"},
		{"refresh mark on a forged token with access", forge(t, jwt.SigningMethodES256, priv, kid, with(func(c jwt.MapClaims) { c["kvreg_refresh"] = true })), ErrRefreshToken, "refresh_token"},
		{"unknown kid", forge(t, jwt.SigningMethodES256, other.priv, map[string]any{"kid": other.KID()}, claimsAt(t0)), ErrUnknownKey, "unknown_key"},
		{"no kid", forge(t, jwt.SigningMethodES256, priv, nil, claimsAt(t0)), ErrUnknownKey, "unknown_key"},
		{"kid not a string", forge(t, jwt.SigningMethodES256, priv, map[string]any{"kid": 7}, claimsAt(t0)), ErrMalformed, "malformed"},
		{"crit header", forge(t, jwt.SigningMethodES256, priv, map[string]any{"kid": f.k.KID(), "crit": []string{"exp"}}, claimsAt(t0)), ErrMalformed, "malformed"},
		{"not a JWT", "hello", ErrMalformed, "malformed"},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed, "malformed"},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed, "malformed"},
		{"empty", "", ErrMalformed, "malformed"},
	}
	for _, c := range cases {
		got, err := f.ver.Verify(c.raw)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %+v, %v; want %v", c.name, got, err, c.want)
			continue
		}
		if r := Reason(err); r != c.label {
			t.Errorf("%s: reason %q, want %q (%v)", c.name, r, c.label, err)
		}
		if !reflect.DeepEqual(got, Claims{}) {
			t.Errorf("%s: claims returned with a refusal: %+v", c.name, got)
		}
	}
}

// Clock skew between replicas within the leeway is tolerated; beyond it not.
func TestLeeway(t *testing.T) {
	f := newFixture(t)
	raw, _, _ := f.iss.Issue("alice", nil, 5*time.Minute)
	for _, c := range []struct {
		at   time.Duration
		want error
	}{
		{-20 * time.Second, nil},
		{-31 * time.Second, ErrNotYetValid},
		{5*time.Minute + 20*time.Second, nil},
		{5*time.Minute + 31*time.Second, ErrExpired},
	} {
		f.clk.now = t0.Add(c.at)
		if _, err := f.ver.Verify(raw); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("at %v: %v, want %v", c.at, err, c.want)
		}
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	old, _, _ := f.iss.Issue("alice", nil, 5*time.Minute)
	k2 := newKey(t)
	f.iss.SetKey(k2)
	f.ver.SetOwnKeys(k2, f.k)
	if f.iss.KID() != k2.KID() {
		t.Fatal("issuer still signs with the old key")
	}
	cur, _, _ := f.iss.Issue("alice", nil, 5*time.Minute)
	for name, raw := range map[string]string{"previous key": old, "current key": cur} {
		if _, err := f.ver.Verify(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The previous key removed: its tokens go, the current key's stay.
	f.ver.SetOwnKeys(k2)
	if _, err := f.ver.Verify(old); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a removed key: %v", err)
	}
	if _, err := f.ver.Verify(cur); err != nil {
		t.Fatal(err)
	}
	// A verifier on another replica, given the same stored key, agrees.
	again, err := ParseSigningKey(k2.MarshalPKCS8())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewVerifier(VerifierConfig{ValidName: testName, Clock: f.clk.Now})
	other.SetOwnKeys(again)
	if _, err := other.Verify(cur); err != nil {
		t.Fatalf("other replica: %v", err)
	}
}

func TestVerifierConfig(t *testing.T) {
	if _, err := NewVerifier(VerifierConfig{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no name check: %v", err)
	}
	if _, err := NewIssuer(IssuerConfig{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no key: %v", err)
	}
	// A verifier for another service or issuer name refuses kvreg's default.
	f := newFixture(t)
	raw, _, _ := f.iss.Issue("alice", nil, time.Minute)
	v, _ := NewVerifier(VerifierConfig{Service: "registry.example.com", ValidName: testName, Clock: f.clk.Now})
	v.SetOwnKeys(f.k)
	if _, err := v.Verify(raw); !errors.Is(err, ErrAudience) {
		t.Fatalf("other service: %v", err)
	}
	v, _ = NewVerifier(VerifierConfig{Name: "kvreg-eu", ValidName: testName, Clock: f.clk.Now})
	v.SetOwnKeys(f.k)
	if _, err := v.Verify(raw); !errors.Is(err, ErrIssuer) {
		t.Fatalf("other issuer name: %v", err)
	}
	if err := v.AddIssuer("kvreg-eu", []PublicKey{f.k.PublicKey()}); !errors.Is(err, ErrConfig) {
		t.Fatalf("outside issuer under our own name: %v", err)
	}
	if Reason(errors.New("x")) != "other" || Reason(nil) != "other" {
		t.Fatal("reason of a foreign error")
	}
}
