package refcount

import (
	"fmt"
	"strconv"
	"strings"
)

// The byte counts the package's messages give people (a quota's refusal),
// written once here for every reader that shows them (the web UI).

// HumanBytes writes n in binary units with one decimal ("12.3 MiB"), the
// decimal left out when it is 0 ("100 MiB").
func HumanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for (f >= 1024 || f <= -1024) && i < 5 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("KMGTPE"[i]) + "iB"
}

// GroupDigits writes n with commas between groups of three digits.
func GroupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
