package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The distribution spec's repository name grammar, as the caller passes it.
var testNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

func testName(n string) bool { return len(n) <= 255 && testNameRE.MatchString(n) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSA is one 2048-bit key per test binary: generating it is slow.
func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func newKey(t testing.TB) *SigningKey {
	t.Helper()
	k, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixture is kvreg's issuer and verifier on one clock, trusting key k.
type fixture struct {
	clk *clock
	k   *SigningKey
	iss *Issuer
	ver *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{now: t0}, k: newKey(t)}
	var err error
	f.iss, err = NewIssuer(IssuerConfig{Key: f.k, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.ver, err = NewVerifier(VerifierConfig{ValidName: testName, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.ver.SetOwnKeys(f.k)
	return f
}

// claimsAt are valid claims of kvreg's own issuer at t0, as a map that
// each hostile case bends.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "kvreg",
		"sub": "alice",
		"aud": "kvreg",
		"exp": now.Add(5 * time.Minute).Unix(),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"jti": "j1",
		"access": []any{
			map[string]any{"type": "repository", "name": "team/app", "actions": []any{"pull"}},
		},
	}
}

// forge signs claims with method and key, with the given header members.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
