package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
)

// Thumbprint computes the RFC 7638 JWK thumbprint of a public key
// (RSA, EC or Ed25519 per RFC 8037): SHA-256 over the required members in
// lexicographic order with no whitespace, base64url without padding.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var canon string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		canon = `{"e":"` + b64(big.NewInt(int64(k.E)).Bytes()) + `","kty":"RSA","n":"` + b64(k.N.Bytes()) + `"}`
	case *ecdsa.PublicKey:
		crv, size, err := curveName(k)
		if err != nil {
			return "", err
		}
		pt, err := k.Bytes() // uncompressed: 0x04 | X | Y, each padded to size
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrKey, err)
		}
		canon = `{"crv":"` + crv + `","kty":"EC","x":"` + b64(pt[1:1+size]) + `","y":"` + b64(pt[1+size:]) + `"}`
	case ed25519.PublicKey:
		canon = `{"crv":"Ed25519","kty":"OKP","x":"` + b64(k) + `"}`
	default:
		return "", fmt.Errorf("%w: unsupported public key type %T", ErrKey, pub)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:]), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// curveName gives the JWK name and coordinate size of a NIST curve.
func curveName(k *ecdsa.PublicKey) (string, int, error) {
	switch k.Curve.Params().Name {
	case "P-256":
		return "P-256", 32, nil
	case "P-384":
		return "P-384", 48, nil
	case "P-521":
		return "P-521", 66, nil
	}
	return "", 0, fmt.Errorf("%w: unsupported curve %s", ErrKey, k.Curve.Params().Name)
}
