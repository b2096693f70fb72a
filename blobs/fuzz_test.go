package blobs

import (
	"errors"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
)

// FuzzParseDigest: ParseDigest is the only gate between a client's digest
// string and the name of a blob in storage. Whatever it accepts is sha256 or
// sha512 with lowercase hex of the right length, so that a name built
// from it cannot escape where blobs are stored.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
		"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
		"sha256:../../../../etc/passwd",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/..",
		"sha384:38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256+b64u:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
		"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256:",
		":",
		"",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if d != "" {
				t.Fatalf("ParseDigest(%q) failed (%v) but returned %q", s, err, d)
			}
			if !errors.Is(err, ErrDigestInvalid) {
				t.Fatalf("ParseDigest(%q): error %v does not wrap ErrDigestInvalid", s, err)
			}
			return
		}
		if string(d) != s {
			t.Fatalf("ParseDigest(%q) = %q: accepted a digest in another spelling", s, d)
		}
		alg, hexPart, ok := strings.Cut(s, ":")
		if !ok {
			t.Fatalf("accepted %q without an algorithm", s)
		}
		want := map[string]int{"sha256": 64, "sha512": 128}[alg]
		if want == 0 {
			t.Fatalf("accepted %q: algorithm %q", s, alg)
		}
		if len(hexPart) != want {
			t.Fatalf("accepted %q: %d hex digits, want %d", s, len(hexPart), want)
		}
		for _, c := range hexPart {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				t.Fatalf("accepted %q: %q is not lowercase hex", s, c)
			}
		}
		if strings.Contains(s, "/") || strings.Contains(s, "..") || strings.ContainsRune(s, 0) {
			t.Fatalf("accepted %q: contains a path separator, .. or NUL", s)
		}
		if d.Algorithm().String() != alg || d.Encoded() != hexPart {
			t.Fatalf("accepted %q: parts %q %q", s, d.Algorithm(), d.Encoded())
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted %q, which go-digest does not validate: %v", s, err)
		}
		// Drivers name storage only after digests they accept.
		if !driver.Valid(string(d)) {
			t.Fatalf("accepted %q, which drivers refuse", s)
		}
		// Deterministic.
		if d2, err := ParseDigest(s); err != nil || d2 != d {
			t.Fatalf("second parse of %q: %q, %v", s, d2, err)
		}
	})
}
