package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func outsideClaims() jwt.MapClaims {
	c := claimsAt(t0)
	c["iss"] = "gitlab"
	c["sub"] = "ci-runner"
	return c
}

// loadFile puts data in a real file and loads it back, as the server will.
func loadFile(t *testing.T, data []byte) []PublicKey {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadPublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func pemOf(t *testing.T, typ string, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestOutsideIssuerPEM(t *testing.T) {
	f := newFixture(t)
	rk := testRSA(t)
	ek := ecKey(t, elliptic.P384())
	ed := edKey(t)
	// A certificate, as GitLab hands out for its registry tokens.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitlab"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ed.Public(), ed)
	if err != nil {
		t.Fatal(err)
	}
	file := append(append(pemOf(t, "PUBLIC KEY", &rk.PublicKey), pemOf(t, "PUBLIC KEY", &ek.PublicKey)...),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})...)
	keys := loadFile(t, file)
	if len(keys) != 3 {
		t.Fatalf("%d keys", len(keys))
	}
	if err := f.ver.AddIssuer("gitlab", keys); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"kid": "whatever-gitlab-calls-it"}
	for name, raw := range map[string]string{
		"RS256":        forge(t, jwt.SigningMethodRS256, rk, hdr, outsideClaims()),
		"PS256":        forge(t, jwt.SigningMethodPS256, rk, nil, outsideClaims()),
		"ES384":        forge(t, jwt.SigningMethodES384, ek, hdr, outsideClaims()),
		"EdDSA (cert)": forge(t, jwt.SigningMethodEdDSA, ed, hdr, outsideClaims()),
	} {
		c, err := f.ver.Verify(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.Issuer != "gitlab" || c.Subject != "ci-runner" || len(c.Access) != 1 {
			t.Errorf("%s: claims %+v", name, c)
		}
	}
	// kvreg's own tokens still verify beside the outside issuer.
	own, _, _ := f.iss.Issue("alice", nil, time.Minute)
	if _, err := f.ver.Verify(own); err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]struct {
		raw  string
		want error
	}{
		"another RSA key":                 {forge(t, jwt.SigningMethodRS256, otherRSA, hdr, outsideClaims()), ErrSignature},
		"kvreg's key under gitlab's name": {forge(t, jwt.SigningMethodES256, f.k.priv, map[string]any{"kid": f.k.KID()}, outsideClaims()), ErrAlgorithm},
		"HS256 with the PEM as secret":    {forge(t, jwt.SigningMethodHS256, file, nil, outsideClaims()), ErrAlgorithm},
		"expired": {forge(t, jwt.SigningMethodRS256, rk, nil, func() jwt.MapClaims {
			c := outsideClaims()
			c["exp"] = t0.Add(-time.Minute).Unix()
			return c
		}()), ErrExpired},
		"wrong aud": {forge(t, jwt.SigningMethodRS256, rk, nil, func() jwt.MapClaims {
			c := outsideClaims()
			c["aud"] = "gitlab-registry"
			return c
		}()), ErrAudience},
		"bad repository name": {forge(t, jwt.SigningMethodRS256, rk, nil, func() jwt.MapClaims {
			c := outsideClaims()
			c["access"] = []any{map[string]any{"type": "repository", "name": "a/../b", "actions": []any{"push"}}}
			return c
		}()), ErrBadScope},
		"refresh mark": {forge(t, jwt.SigningMethodRS256, rk, nil, func() jwt.MapClaims {
			c := outsideClaims()
			c["kvreg_refresh"] = true
			return c
		}()), ErrRefreshToken},
	}
	for name, c := range hostile {
		if _, err := f.ver.Verify(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// An outside issuer's token is never a refresh token for kvreg.
	refresh := outsideClaims()
	refresh["kvreg_refresh"] = true
	delete(refresh, "access")
	if _, err := f.ver.VerifyRefresh(forge(t, jwt.SigningMethodRS256, rk, nil, refresh)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("outside refresh token: %v", err)
	}
}

func jwkRSA(kid, alg string, k *rsa.PublicKey) string {
	return `{"kty":"RSA","kid":"` + kid + `","alg":"` + alg + `","use":"sig","n":"` + b64(k.N.Bytes()) + `","e":"` + b64(big.NewInt(int64(k.E)).Bytes()) + `"}`
}

func jwkEC(kid string, k *ecdsa.PublicKey) string {
	pt, _ := k.Bytes()
	n := (len(pt) - 1) / 2
	crv, _, _ := curveName(k)
	return `{"kty":"EC","kid":"` + kid + `","crv":"` + crv + `","x":"` + b64(pt[1:1+n]) + `","y":"` + b64(pt[1+n:]) + `"}`
}

func jwkOKP(kid string, k ed25519.PublicKey) string {
	return `{"kty":"OKP","kid":"` + kid + `","crv":"Ed25519","x":"` + b64(k) + `"}`
}

func TestOutsideIssuerJWKS(t *testing.T) {
	f := newFixture(t)
	rk := testRSA(t)
	ek := ecKey(t, elliptic.P256())
	ed := edKey(t)
	jwks := `{"keys":[` + strings.Join([]string{
		jwkRSA("r1", "RS256", &rk.PublicKey),
		jwkEC("e1", &ek.PublicKey),
		jwkOKP("o1", ed.Public().(ed25519.PublicKey)),
		// Skipped: an encryption key, an X25519 key, a symmetric key.
		`{"kty":"RSA","kid":"enc","use":"enc","n":"` + b64(rk.N.Bytes()) + `","e":"AQAB"}`,
		`{"kty":"OKP","kid":"x","crv":"X25519","x":"` + b64(make([]byte, 32)) + `"}`,
		`{"kty":"oct","kid":"h","k":"c2VjcmV0"}`,
	}, ",") + `]}`
	keys := loadFile(t, []byte("\n  "+jwks+"\n"))
	if len(keys) != 3 {
		t.Fatalf("%d keys: %+v", len(keys), keys)
	}
	if err := f.ver.AddIssuer("gitlab", keys); err != nil {
		t.Fatal(err)
	}
	ok := map[string]string{
		"RS256 r1":     forge(t, jwt.SigningMethodRS256, rk, map[string]any{"kid": "r1"}, outsideClaims()),
		"ES256 e1":     forge(t, jwt.SigningMethodES256, ek, map[string]any{"kid": "e1"}, outsideClaims()),
		"EdDSA o1":     forge(t, jwt.SigningMethodEdDSA, ed, map[string]any{"kid": "o1"}, outsideClaims()),
		"ES256 no kid": forge(t, jwt.SigningMethodES256, ek, nil, outsideClaims()),
	}
	for name, raw := range ok {
		if _, err := f.ver.Verify(raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	hostile := map[string]struct {
		raw  string
		want error
	}{
		"PS256 under an RS256 JWK":      {forge(t, jwt.SigningMethodPS256, rk, map[string]any{"kid": "r1"}, outsideClaims()), ErrAlgorithm},
		"EC key under the RSA kid":      {forge(t, jwt.SigningMethodES256, ek, map[string]any{"kid": "r1"}, outsideClaims()), ErrAlgorithm},
		"right alg, wrong kid's key":    {forge(t, jwt.SigningMethodES256, ecKey(t, elliptic.P256()), map[string]any{"kid": "e1"}, outsideClaims()), ErrSignature},
		"unknown kid":                   {forge(t, jwt.SigningMethodRS256, rk, map[string]any{"kid": "r2"}, outsideClaims()), ErrUnknownKey},
		"skipped encryption key's kid":  {forge(t, jwt.SigningMethodRS256, rk, map[string]any{"kid": "enc"}, outsideClaims()), ErrUnknownKey},
		"HS256 with the JWKS as secret": {forge(t, jwt.SigningMethodHS256, []byte(jwks), map[string]any{"kid": "h"}, outsideClaims()), ErrAlgorithm},
	}
	for name, c := range hostile {
		if _, err := f.ver.Verify(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestLoadPublicKeysRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256 := ecKey(t, elliptic.P256())
	pt, _ := p256.PublicKey.Bytes()
	offCurve := append([]byte(nil), pt...)
	offCurve[64] ^= 1
	privDER, _ := x509.MarshalPKCS8PrivateKey(p256)
	cases := map[string]string{
		"empty":              "",
		"not PEM":            "hello",
		"private key PEM":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		"short RSA PEM":      string(pemOf(t, "PUBLIC KEY", &small.PublicKey)),
		"short RSA JWK":      `{"keys":[` + jwkRSA("s", "RS256", &small.PublicKey) + `]}`,
		"bad JSON":           `{"keys":[`,
		"no keys":            `{"keys":[]}`,
		"only enc keys":      `{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`,
		"point off curve":    `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(offCurve[1:33]) + `","y":"` + b64(offCurve[33:]) + `"}]}`,
		"short coordinate":   `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(pt[2:33]) + `","y":"` + b64(pt[33:]) + `"}]}`,
		"unknown curve":      `{"keys":[{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}]}`,
		"padded base64":      `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(make([]byte, 32)) + `="}]}`,
		"short Ed25519":      `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		"even exponent":      `{"keys":[{"kty":"RSA","n":"` + rfc7638N + `","e":"Ag"}]}`,
		"alg of another key": `{"keys":[{"kty":"RSA","alg":"ES256","n":"` + rfc7638N + `","e":"AQAB"}]}`,
		"duplicate kid": `{"keys":[{"kty":"RSA","kid":"a","n":"` + rfc7638N + `","e":"AQAB"},` +
			`{"kty":"RSA","kid":"a","n":"` + rfc7638N + `","e":"AQAB"}]}`,
	}
	for name, data := range cases {
		if keys, err := LoadPublicKeys([]byte(data)); !errors.Is(err, ErrKey) {
			t.Errorf("%s: %v, %v; want ErrKey", name, keys, err)
		}
	}
}
