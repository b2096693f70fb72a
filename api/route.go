package api

import (
	"regexp"
	"strings"
)

type routeKind int

const (
	routeBase routeKind = iota
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeReferrers
)

// route is a parsed /v2/ path.
type route struct {
	kind routeKind
	name string // repository
	ref  string // tag, digest or upload id
	// mirror: name is a mirror's cached repository (see routeMirror);
	// nil for a local one.
	mirror *mirrorRoute
}

var (
	// The repository name grammar of the distribution spec.
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

const maxNameLen = 255

func validName(n string) bool { return len(n) <= maxNameLen && nameRE.MatchString(n) }
func validTag(t string) bool  { return tagRE.MatchString(t) }

// ValidRepositoryName reports whether n is a repository name kvreg
// accepts: the judge of the names in tokens' access claims.
func ValidRepositoryName(n string) bool { return validName(n) }

// parseRoute parses the part of the path after "/v2/". Repository names
// contain slashes, so the operation is read from the end.
func parseRoute(p string) (route, *Error) {
	if p == "" {
		return route{kind: routeBase}, nil
	}
	if p == "_catalog" {
		return route{kind: routeCatalog}, nil
	}
	seg := strings.Split(p, "/")
	n := len(seg)
	var rt route
	var nameSegs []string
	switch {
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		rt, nameSegs = route{kind: routeTags}, seg[:n-2]
	case n >= 3 && seg[n-2] == "manifests":
		rt, nameSegs = route{kind: routeManifest, ref: seg[n-1]}, seg[:n-2]
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		if seg[n-1] == "" {
			rt, nameSegs = route{kind: routeUploadStart}, seg[:n-3]
		} else {
			rt, nameSegs = route{kind: routeUpload, ref: seg[n-1]}, seg[:n-3]
		}
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		rt, nameSegs = route{kind: routeUploadStart}, seg[:n-2]
	case n >= 3 && seg[n-2] == "blobs":
		rt, nameSegs = route{kind: routeBlob, ref: seg[n-1]}, seg[:n-2]
	case n >= 3 && seg[n-2] == "referrers":
		rt, nameSegs = route{kind: routeReferrers, ref: seg[n-1]}, seg[:n-2]
	default:
		return route{}, apiErr(kNameUnknown, "no such route: /v2/%s", p)
	}
	rt.name = strings.Join(nameSegs, "/")
	if !validName(rt.name) {
		return route{}, apiErr(kNameInvalid, "invalid repository name %q", rt.name)
	}
	if rt.kind != routeUploadStart && rt.kind != routeTags && rt.ref == "" {
		return route{}, apiErr(kNameUnknown, "no such route: /v2/%s", p)
	}
	return rt, nil
}
