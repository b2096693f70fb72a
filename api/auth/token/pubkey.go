package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
)

// minRSABits: shorter RSA keys are refused when loaded.
const minRSABits = 2048

// PublicKey is a key that verifies tokens: one of kvreg's own, or one of
// an outside issuer's. KID is empty when the source names no key (a PEM
// file); Alg, when set, is the only algorithm the key may be used with
// (a JWK's "alg"); otherwise the key's type decides.
type PublicKey struct {
	KID string
	Key crypto.PublicKey
	Alg string
}

// algs the verifier accepts at all: no "none", no HMAC (a shared secret has
// no place beside public keys: a public key used as an HMAC secret is the
// classic forgery).
var acceptedAlgs = []string{
	"ES256", "ES384", "ES512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"EdDSA",
}

// allows reports whether a token signed with alg may be checked with k.
func (k PublicKey) allows(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		crv, _, err := curveName(key)
		if err != nil {
			return false
		}
		return map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv] == alg
	case *rsa.PublicKey:
		return slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// checkPublicKey refuses what cannot verify safely.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrKey, k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if _, _, err := curveName(k); err != nil {
			return err
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrKey, len(k))
		}
	default:
		return fmt.Errorf("%w: unsupported public key type %T", ErrKey, pub)
	}
	return nil
}

// LoadPublicKeys reads an outside issuer's keys from a file's bytes: a
// JWKS document (JSON) or PEM blocks of public keys ("PUBLIC KEY", "RSA
// PUBLIC KEY") or certificates, whose public keys are taken as they are
// (the file is the trust decision, not a chain).
func LoadPublicKeys(data []byte) ([]PublicKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return ParseJWKS(trimmed)
	}
	return ParsePublicKeysPEM(data)
}

// ParsePublicKeysPEM reads every PEM block of data; blocks of other types
// are an error, so that a private key given by mistake is not half-used.
func ParsePublicKeysPEM(data []byte) ([]PublicKey, error) {
	var out []PublicKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("%w: PEM block %q is not a public key or certificate", ErrKey, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrKey, block.Type, err)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, err
		}
		out = append(out, PublicKey{Key: pub})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM public key found", ErrKey)
	}
	return out, nil
}
