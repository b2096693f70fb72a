package token

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

// RFC 7638 section 3.1: the worked example's RSA key and its thumbprint.
const (
	rfc7638N     = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638Thumb = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestThumbprintRFC7638(t *testing.T) {
	jwks := `{"keys":[{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}`
	keys, err := ParseJWKS([]byte(jwks))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638Thumb {
		t.Fatalf("thumbprint %s, want %s", got, rfc7638Thumb)
	}
	if keys[0].KID != "2011-04-29" || keys[0].Alg != "RS256" {
		t.Fatalf("kid %q alg %q", keys[0].KID, keys[0].Alg)
	}
}

// An EC thumbprint pads coordinates to the curve size: a key whose X has
// a leading zero byte must still hash 32 bytes of it.
func TestThumbprintECPadsCoordinates(t *testing.T) {
	for range 2000 {
		k := ecKey(t, elliptic.P256())
		pt, _ := k.PublicKey.Bytes()
		if pt[1] != 0 {
			continue
		}
		jwk := `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:]) + `"}]}`
		keys, err := ParseJWKS([]byte(jwk))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := Thumbprint(&k.PublicKey)
		b, _ := Thumbprint(keys[0].Key)
		if a != b || len(a) != 43 {
			t.Fatalf("%s != %s", a, b)
		}
		return
	}
	t.Fatal("no key with a leading zero byte in 2000 tries")
}

func TestSigningKeyRoundTrip(t *testing.T) {
	k := newKey(t)
	if len(k.KID()) != 43 {
		t.Fatalf("kid %q", k.KID())
	}
	want, _ := Thumbprint(k.Public())
	if k.KID() != want {
		t.Fatalf("kid %s, thumbprint %s", k.KID(), want)
	}
	der := k.MarshalPKCS8()
	sec1, err := x509.MarshalECPrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string][]byte{
		"pkcs8 der": der,
		"pkcs8 pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"sec1 pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
	}
	for name, b := range forms {
		k2, err := ParseSigningKey(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k2.KID() != k.KID() || !bytes.Equal(k2.MarshalPKCS8(), der) {
			t.Fatalf("%s: another key back", name)
		}
	}
	if other := newKey(t); other.KID() == k.KID() {
		t.Fatal("two fresh keys share a kid")
	}
}

func TestParseSigningKeyRefuses(t *testing.T) {
	p384, _ := x509.MarshalPKCS8PrivateKey(ecKey(t, elliptic.P384()))
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(testRSA(t))
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey(t))
	pubDER, _ := x509.MarshalPKIXPublicKey(&ecKey(t, elliptic.P256()).PublicKey)
	cases := map[string][]byte{
		"P-384":      p384,
		"RSA":        rsaDER,
		"Ed25519":    edDER,
		"public key": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		"garbage":    []byte("not a key"),
		"empty":      nil,
	}
	for name, b := range cases {
		if _, err := ParseSigningKey(b); !errors.Is(err, ErrKey) {
			t.Errorf("%s: %v, want ErrKey", name, err)
		}
	}
}

func TestPublicKeyAllows(t *testing.T) {
	own := newKey(t).PublicKey()
	if !own.allows("ES256") || own.allows("ES384") || own.allows("RS256") || own.allows("HS256") || own.allows("none") {
		t.Fatal("own key allows another alg than ES256")
	}
	r := PublicKey{Key: &testRSA(t).PublicKey}
	if !r.allows("RS256") || !r.allows("PS512") || r.allows("ES256") || r.allows("HS256") {
		t.Fatal("RSA key alg set")
	}
	r.Alg = "RS256"
	if r.allows("PS256") {
		t.Fatal("a key's declared alg is not binding")
	}
	p384 := PublicKey{Key: &ecKey(t, elliptic.P384()).PublicKey}
	if !p384.allows("ES384") || p384.allows("ES256") {
		t.Fatal("P-384 alg")
	}
}
