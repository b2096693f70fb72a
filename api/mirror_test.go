package api

import (
	"errors"
	"testing"
)

func TestCheckMirrors(t *testing.T) {
	ok, err := CheckMirrors([]Mirror{
		{Prefix: "hub", URL: "https://registry-1.docker.io/", Registry: "Docker.IO", Default: true},
		{Prefix: "quay", URL: "http://127.0.0.1:5000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok[0].URL != "https://registry-1.docker.io" || ok[0].Registry != "docker.io" || ok[0].Recheck != DefaultRecheck || ok[1].Registry != "127.0.0.1" {
		t.Fatalf("defaults: %+v", ok)
	}
	for name, ms := range map[string][]Mirror{
		"bad prefix":        {{Prefix: "Hub", URL: "https://h"}},
		"empty prefix":      {{Prefix: "", URL: "https://h"}},
		"bad scheme":        {{Prefix: "hub", URL: "ftp://h"}},
		"no host":           {{Prefix: "hub", URL: "https://"}},
		"a path":            {{Prefix: "hub", URL: "https://h/v2"}},
		"credentials inURL": {{Prefix: "hub", URL: "https://u:p@h"}},
		"same prefix":       {{Prefix: "hub", URL: "https://a"}, {Prefix: "hub", URL: "https://b"}},
		"nested prefix":     {{Prefix: "hub", URL: "https://a"}, {Prefix: "hub/x", URL: "https://b"}},
		"same registry":     {{Prefix: "a", URL: "https://h"}, {Prefix: "b", URL: "https://h:444"}},
		"two defaults":      {{Prefix: "a", URL: "https://a", Default: true}, {Prefix: "b", URL: "https://b", Default: true}},
		"negative recheck":  {{Prefix: "a", URL: "https://a", Recheck: -1}},
	} {
		if _, err := CheckMirrors(ms); !errors.Is(err, ErrMirror) {
			t.Errorf("%s: %v, want ErrMirror", name, err)
		}
	}
}

func TestMirrorRoute(t *testing.T) {
	ms, err := CheckMirrors([]Mirror{
		{Prefix: "hub", URL: "https://registry-1.docker.io", Registry: "docker.io", Default: true},
		{Prefix: "ghcr", URL: "https://ghcr.io"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ns                string
		ok, byDefault           bool
		prefix, local, upstream string
		err                     error
	}{
		{name: "hub/library/busybox", ok: true, prefix: "hub", local: "hub/library/busybox", upstream: "library/busybox"},
		{name: "ghcr/org/tool", ok: true, prefix: "ghcr", local: "ghcr/org/tool", upstream: "org/tool"},
		{name: "library/busybox", ok: true, byDefault: true, prefix: "hub", local: "hub/library/busybox", upstream: "library/busybox"},
		{name: "library/busybox", ns: "docker.io", ok: true, prefix: "hub", local: "hub/library/busybox", upstream: "library/busybox"},
		{name: "org/tool", ns: "GHCR.io", ok: true, prefix: "ghcr", local: "ghcr/org/tool", upstream: "org/tool"},
		{name: "org/tool", ns: "example.com", err: errUnknownNamespace},
		{name: "hubx/y", ok: true, byDefault: true, prefix: "hub", local: "hub/hubx/y", upstream: "hubx/y"},
	} {
		r, ok, err := mirrors(ms).route(c.name, c.ns)
		if !errors.Is(err, c.err) || ok != c.ok {
			t.Errorf("%s ns=%q: ok %v err %v", c.name, c.ns, ok, err)
			continue
		}
		if !ok {
			continue
		}
		if r.m.Prefix != c.prefix || r.local != c.local || r.upstream != c.upstream || r.byDefault != c.byDefault {
			t.Errorf("%s ns=%q: %+v", c.name, c.ns, r)
		}
	}
	// Without a default mirror a name under no prefix is a local one.
	if _, ok, err := mirrors(ms[1:]).route("library/busybox", ""); ok || err != nil {
		t.Errorf("no default: routed (%v, %v)", ok, err)
	}
}
