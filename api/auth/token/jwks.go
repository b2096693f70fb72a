package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
)

// jwk holds the members of a JSON Web Key kvreg reads (RFC 7517, 7518,
// 8037); others are ignored.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// ParseJWKS reads a JWK Set ({"keys":[...]}) of RSA, EC (P-256, P-384,
// P-521) and OKP (Ed25519) public keys. Keys meant for encryption ("use"
// other than "sig") or with an algorithm the verifier never accepts are
// skipped; a key of a supported type that does not parse is an error, as
// is a set with no usable key or with two keys of one kid.
func ParseJWKS(data []byte) ([]PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %v", ErrKey, err)
	}
	var out []PublicKey
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("%w: JWKS key %d: %v", ErrKey, i, err)
		}
		if k.Use != "" && k.Use != "sig" || k.Alg != "" && !slices.Contains(acceptedAlgs, k.Alg) {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: JWKS key %d (kid %q): %v", ErrKey, i, k.Kid, err)
		}
		if pub == nil {
			continue // a key type kvreg does not verify with
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if k.Kid != "" {
			if seen[k.Kid] {
				return nil, fmt.Errorf("%w: JWKS: kid %q appears twice", ErrKey, k.Kid)
			}
			seen[k.Kid] = true
		}
		pk := PublicKey{KID: k.Kid, Key: pub, Alg: k.Alg}
		if k.Alg != "" && !pk.allows(k.Alg) {
			return nil, fmt.Errorf("%w: JWKS key %d (kid %q): alg %s does not fit a %s key", ErrKey, i, k.Kid, k.Alg, k.Kty)
		}
		out = append(out, pk)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: JWKS holds no usable signing key", ErrKey)
	}
	return out, nil
}

// publicKey builds the key; nil, nil for a type kvreg does not use.
func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64Decode(k.N)
		if err != nil || len(n) == 0 || n[0] == 0 {
			return nil, fmt.Errorf("bad n")
		}
		e, err := b64Decode(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, fmt.Errorf("bad e")
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp%2 == 0 {
			return nil, fmt.Errorf("bad e")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}, nil
	case "EC":
		var curve elliptic.Curve
		var size int
		switch k.Crv {
		case "P-256":
			curve, size = elliptic.P256(), 32
		case "P-384":
			curve, size = elliptic.P384(), 48
		case "P-521":
			curve, size = elliptic.P521(), 66
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, errX := b64Decode(k.X)
		y, errY := b64Decode(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("bad x or y")
		}
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, err
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := b64Decode(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("bad x")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func b64Decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
