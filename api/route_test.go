package api

import "testing"

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		err  kind
		bad  bool
	}{
		{path: "", want: route{kind: routeBase}},
		{path: "_catalog", want: route{kind: routeCatalog}},
		{path: "app/tags/list", want: route{kind: routeTags, name: "app"}},
		{path: "a/b/c/tags/list", want: route{kind: routeTags, name: "a/b/c"}},
		{path: "a/b/manifests/latest", want: route{kind: routeManifest, name: "a/b", ref: "latest"}},
		{path: "a/manifests/sha256:abc", want: route{kind: routeManifest, name: "a", ref: "sha256:abc"}},
		{path: "a/blobs/sha256:abc", want: route{kind: routeBlob, name: "a", ref: "sha256:abc"}},
		{path: "a/blobs/uploads/", want: route{kind: routeUploadStart, name: "a"}},
		{path: "a/blobs/uploads", want: route{kind: routeUploadStart, name: "a"}},
		{path: "a/blobs/uploads/0123", want: route{kind: routeUpload, name: "a", ref: "0123"}},
		{path: "a/referrers/sha256:abc", want: route{kind: routeReferrers, name: "a", ref: "sha256:abc"}},
		// Operation words may also be repository components.
		{path: "x/blobs/blobs/sha256:abc", want: route{kind: routeBlob, name: "x/blobs", ref: "sha256:abc"}},
		{path: "manifests/manifests/v1", want: route{kind: routeManifest, name: "manifests", ref: "v1"}},
		{path: "tags/tags/list", want: route{kind: routeTags, name: "tags"}},
		{path: "my-org/my_app.v2/blobs/uploads/", want: route{kind: routeUploadStart, name: "my-org/my_app.v2"}},
		// Bad names.
		{path: "Upper/tags/list", bad: true, err: kNameInvalid},
		{path: "a/../b/tags/list", bad: true, err: kNameInvalid},
		{path: "../../etc/manifests/x", bad: true, err: kNameInvalid},
		{path: "a//b/tags/list", bad: true, err: kNameInvalid},
		{path: "/a/tags/list", bad: true, err: kNameInvalid},
		{path: "a/./b/manifests/x", bad: true, err: kNameInvalid},
		{path: "a-/tags/list", bad: true, err: kNameInvalid},
		{path: "tags/list", bad: true, err: kNameUnknown},
		{path: "a/manifests/", bad: true, err: kNameUnknown},
		{path: "a/blobs/", bad: true, err: kNameUnknown},
		{path: "a/unknown/x", bad: true, err: kNameUnknown},
		{path: "a", bad: true, err: kNameUnknown},
	}
	for _, tc := range tests {
		got, err := parseRoute(tc.path)
		if tc.bad {
			if err == nil {
				t.Errorf("parseRoute(%q) = %+v, want error %s", tc.path, got, table[tc.err].code)
			} else if err.kind != tc.err {
				t.Errorf("parseRoute(%q) error %s, want %s", tc.path, table[err.kind].code, table[tc.err].code)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRoute(%q): %v", tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseRoute(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestNameLength(t *testing.T) {
	ok := ""
	for len(ok) < 255 {
		ok += "a"
	}
	if !validName(ok) {
		t.Fatal("a 255-byte name must be valid")
	}
	if validName(ok + "a") {
		t.Fatal("a 256-byte name must be refused")
	}
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-99", 0, 99, true},
		{"bytes 100-199", 100, 199, true},
		{"5-5", 5, 5, true},
		{"10-9", 0, 0, false},
		{"-1-5", 0, 0, false},
		{"abc", 0, 0, false},
		{"1-", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		s, e, ok := contentRange(tc.in)
		if ok != tc.ok || (ok && (s != tc.start || e != tc.end)) {
			t.Errorf("contentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
}

func TestErrorTableComplete(t *testing.T) {
	for k := kBlobUnknown; k <= kMethodNotAllowed; k++ {
		e := table[k]
		if e.code == "" || e.status < 400 || e.status > 499 {
			t.Errorf("kind %d has code %q status %d", k, e.code, e.status)
		}
	}
}
