package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// NewSigningKey makes a key to sign kvreg's tokens: ECDSA P-256 (ES256),
// returned as PKCS #8 DER with its id.
func NewSigningKey() (kid string, pkcs8 []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	if kid, err = KeyID(&k.PublicKey); err != nil {
		return "", nil, err
	}
	pkcs8, err = x509.MarshalPKCS8PrivateKey(k)
	return kid, pkcs8, err
}

// KeyID is a P-256 public key's id in tokens: its JWK thumbprint (RFC
// 7638), base64url(SHA-256) of the required members in lexical order,
// with no whitespace.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	if pub.Curve != elliptic.P256() {
		return "", fmt.Errorf("signing key: curve %s, want P-256", pub.Curve.Params().Name)
	}
	e, err := pub.ECDH()
	if err != nil {
		return "", err
	}
	raw := e.Bytes() // 0x04 | X | Y, 32 bytes each
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := `{"crv":"P-256","kty":"EC","x":"` + b64(raw[1:33]) + `","y":"` + b64(raw[33:65]) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return b64(sum[:]), nil
}
