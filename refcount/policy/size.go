package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a byte count written as a plain number or with a unit: decimal
// (KB, MB, GB, TB: powers of 1000) or binary (KiB, MiB, GiB, TiB: powers
// of 1024); B alone is bytes. It decodes from YAML and text.
type Size int64

var units = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first, so that "GiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize reads "10GiB", "500MB", "1.5GiB", "1024": a non-negative
// number of bytes that fits an int64.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("%w: size %q: no number", ErrRule, s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%w: size %q is negative", ErrRule, s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%w: size %q is too large", ErrRule, s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) {
		return 0, fmt.Errorf("%w: size %q: a number of bytes, optionally with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", ErrRule, s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%w: size %q is negative", ErrRule, s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: size %q is too large", ErrRule, s)
	}
	return int64(v), nil
}

// UnmarshalText reads a Size with ParseSize (YAML scalars decode through
// it).
func (s *Size) UnmarshalText(b []byte) error {
	n, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// String writes the size in bytes.
func (s Size) String() string { return strconv.FormatInt(int64(s), 10) }
