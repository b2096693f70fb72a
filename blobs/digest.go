package blobs

import (
	_ "crypto/sha256" // register the hash for go-digest
	_ "crypto/sha512"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// ParseDigest validates a digest string: sha256 or sha512, lowercase hex of
// the right length. Only a digest that passed here is used to build a path.
func ParseDigest(s string) (digest.Digest, error) {
	if wellFormed(s) {
		return digest.Digest(s), nil
	}
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrDigestInvalid, s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", fmt.Errorf("%w: %q: unsupported algorithm %s", ErrDigestInvalid, s, d.Algorithm())
}

// wellFormed is the common case checked by hand: go-digest's regular
// expression costs a quarter of a HEAD request.
func wellFormed(s string) bool {
	var hex string
	switch {
	case len(s) == 7+64 && s[:7] == "sha256:":
		hex = s[7:]
	case len(s) == 7+128 && s[:7] == "sha512:":
		hex = s[7:]
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
