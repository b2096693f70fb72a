package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// SigningKey is one of kvreg's own signing keys: ECDSA on P-256, used
// with ES256 (small signatures, fast to verify, and every JWT library
// knows it). Its kid is its RFC 7638 thumbprint, so that every replica
// names the same key the same way without agreeing on anything else.
type SigningKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// NewSigningKey generates a fresh key.
func NewSigningKey() (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %v", ErrKey, err)
	}
	return newSigningKey(priv)
}

// ParseSigningKey reads a private key in PKCS#8 DER, or PEM holding PKCS#8
// ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", as openssl ecparam writes
// it). Only P-256 keys are accepted.
func ParseSigningKey(pemOrPKCS8 []byte) (*SigningKey, error) {
	der := pemOrPKCS8
	sec1 := false
	if block, _ := pem.Decode(pemOrPKCS8); block != nil {
		switch block.Type {
		case "PRIVATE KEY":
		case "EC PRIVATE KEY":
			sec1 = true
		default:
			return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKey, block.Type)
		}
		der = block.Bytes
	}
	var priv any
	var err error
	if sec1 {
		priv, err = x509.ParseECPrivateKey(der)
	} else {
		priv, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: signing key must be ECDSA P-256, got %T", ErrKey, priv)
	}
	return newSigningKey(ec)
}

func newSigningKey(priv *ecdsa.PrivateKey) (*SigningKey, error) {
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &SigningKey{priv: priv, kid: kid}, nil
}

// KID is the key's RFC 7638 JWK thumbprint, base64url of its SHA-256.
func (k *SigningKey) KID() string { return k.kid }

// Public is the key's public half.
func (k *SigningKey) Public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// MarshalPKCS8 gives the private key as PKCS#8 DER, the form kvreg stores.
func (k *SigningKey) MarshalPKCS8() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		// A P-256 key always marshals; anything else is a broken invariant.
		panic(fmt.Sprintf("token: marshal P-256 key: %v", err))
	}
	return der
}

// PublicKey describes the public half as an outside verifier reads it.
func (k *SigningKey) PublicKey() PublicKey {
	return PublicKey{KID: k.kid, Key: &k.priv.PublicKey, Alg: "ES256"}
}
