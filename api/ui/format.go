package ui

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// human writes a byte count in binary units, "12.3 MiB"; bytes below 1 KiB
// as they are.
func human(n int64) string { return refcount.HumanBytes(n) }

// grouped writes an exact count with separators: 1,234,567.
func grouped(n int64) string { return refcount.GroupDigits(n) }

// ago says how long before now t was, in the largest whole unit: "3 days
// ago". The zero time is "never".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return itoa(n) + " " + unit + "s ago"
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	case d < 30*24*time.Hour:
		return plural(int64(d/(24*time.Hour)), "day")
	case d < 365*24*time.Hour:
		return plural(int64(d/(30*24*time.Hour)), "month")
	}
	return plural(int64(d/(365*24*time.Hour)), "year")
}

// shortDigest keeps the algorithm and 12 hex digits: enough to tell
// images apart on a page, the whole digest being in the link and title.
func shortDigest(d string) string {
	i := strings.IndexByte(d, ':')
	if i < 0 || len(d) < i+1+12 {
		return d
	}
	return d[:i+1+12]
}

// shortType names a media type by its last meaningful part:
// "application/vnd.oci.image.manifest.v1+json" is "oci image manifest".
func shortType(mt string) string {
	switch mt {
	case "application/vnd.oci.image.manifest.v1+json":
		return "OCI image"
	case "application/vnd.oci.image.index.v1+json":
		return "OCI index"
	case "application/vnd.docker.distribution.manifest.v2+json":
		return "Docker image"
	case "application/vnd.docker.distribution.manifest.list.v2+json":
		return "Docker manifest list"
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return "image config"
	case "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return "layer (tar+gzip)"
	case "application/vnd.oci.image.layer.v1.tar+zstd":
		return "layer (tar+zstd)"
	case "application/vnd.oci.image.layer.v1.tar":
		return "layer (tar)"
	case "":
		return "-"
	}
	return mt
}

// deleteURL is the confirmation page of a target. '/', ':' and '@' are
// left as they are (RFC 3986 allows them in a query), so the link reads
// like the target.
func deleteURL(target string) template.URL {
	q := url.QueryEscape(target)
	q = strings.NewReplacer("%2F", "/", "%3A", ":", "%40", "@").Replace(q)
	return template.URL(Prefix + "delete?target=" + q)
}

// artifactType is a manifest's artifact type worth showing: none for an
// image, whose artifact type is only its config's media type.
func artifactType(at string) string {
	if isImageConfig(at) {
		return ""
	}
	return at
}
