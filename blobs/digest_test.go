package blobs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	hex128 := strings.Repeat("0f", 64)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"sha256:" + hex64, true},
		{"sha512:" + hex128, true},
		{"sha256:" + strings.ToUpper(hex64), false},
		{"sha256:" + hex64[:63], false},
		{"sha256:" + hex64 + "0", false},
		{"sha512:" + hex64, false},
		{"sha384:" + strings.Repeat("ab", 48), false},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", false},
		{"sha256:" + hex64[:62] + "zz", false},
		{"sha256:../../" + hex64[6:], false},
		{"", false},
		{"sha256", false},
	} {
		d, err := ParseDigest(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseDigest(%q) = %q, %v; want ok=%v", tc.in, d, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrDigestInvalid) {
			t.Errorf("ParseDigest(%q): %v is not ErrDigestInvalid", tc.in, err)
		}
		if err == nil && d.Validate() != nil {
			t.Errorf("ParseDigest(%q) accepted what go-digest refuses", tc.in)
		}
	}
}
