package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		want bool
	}{
		{"*", "", true},
		{"*", "a/b/c", true},
		{"team/*", "team/app", true},
		{"team/*", "team/app/sub", true},
		{"team/*", "team", false},
		{"team/*", "teamx/app", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"v*", "v1.2.3", true},
		{"v*", "latest", false},
		{"release-*", "release-", true},
		{"*-rc?", "1.0-rc1", true},
		{"*-rc?", "1.0-rc12", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "a", false},
	} {
		if got := Match(c.p, c.n); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.p, c.n, got, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1024", 1024}, {"10GiB", 10 << 30}, {"500MB", 500_000_000}, {"1.5KiB", 1536},
		{"2 kb", 2000}, {"7B", 7}, {"3M", 3 << 20}, {"1TiB", 1 << 40},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "-1GiB", "ten", "1QB", "9999999999TiB", "NaN"} {
		if n, err := ParseSize(bad); !errors.Is(err, ErrRule) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrRule", bad, n, err)
		}
	}
	var s Size
	if err := s.UnmarshalText([]byte("2GiB")); err != nil || s != 2<<30 {
		t.Errorf("UnmarshalText: %d %v", s, err)
	}
}

func TestSetLookups(t *testing.T) {
	s := &Set{
		Immutables: []Immutable{
			{Repos: []string{"prod/*"}, Tags: []string{"v*", "release-*"}},
			{Repos: []string{"*"}, Tags: []string{"stable"}},
		},
		Retentions: []Retention{
			{Repos: []string{"ci/*"}, KeepLast: 10, KeepTags: []string{"latest"}},
			{Repos: []string{"*"}, KeepPulledWithin: time.Hour},
		},
		Quotas: []Quota{{Repos: []string{"team-a/*"}, MaxBytes: 10 << 30, MaxTags: 500}},
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		repo, tag string
		want      bool
	}{
		{"prod/app", "v1", true},
		{"prod/app", "release-2", true},
		{"prod/app", "latest", false},
		// The first rule matching prod/app is the first one: "stable" is
		// not among its tags.
		{"prod/app", "stable", false},
		{"dev/app", "stable", true},
		{"dev/app", "v1", false},
	} {
		if got := s.ImmutableTag(c.repo, c.tag); got != c.want {
			t.Errorf("ImmutableTag(%s, %s) = %v, want %v", c.repo, c.tag, got, c.want)
		}
	}
	if r, ok := s.Retention("ci/x/y"); !ok || r.KeepLast != 10 {
		t.Errorf("Retention(ci/x/y) = %+v %v", r, ok)
	}
	if r, ok := s.Retention("other"); !ok || r.KeepLast != 0 || r.KeepPulledWithin != time.Hour {
		t.Errorf("Retention(other) = %+v %v", r, ok)
	}
	if q, ok := s.Quota("team-a/app"); !ok || q.MaxBytes != 10<<30 || q.MaxTags != 500 {
		t.Errorf("Quota(team-a/app) = %+v %v", q, ok)
	}
	if _, ok := s.Quota("team-b/app"); ok {
		t.Error("team-b/app has a quota")
	}
	var none *Set
	if none.ImmutableTag("a", "b") || !none.Empty() || none.Validate() != nil {
		t.Error("a nil set has rules")
	}
	if _, ok := none.Retention("a"); ok {
		t.Error("a nil set has a retention rule")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Set
		want string
	}{
		{Set{Immutables: []Immutable{{Repos: []string{"Prod/*"}, Tags: []string{"v*"}}}}, "immutable rule 1"},
		{Set{Immutables: []Immutable{{Repos: []string{"prod/*"}}}}, "no tags"},
		{Set{Immutables: []Immutable{{Repos: []string{"prod/*"}, Tags: []string{"v 1"}}}}, "tag pattern"},
		{Set{Retentions: []Retention{{Repos: []string{"ci/*"}, KeepLast: -1}}}, "negative"},
		{Set{Retentions: []Retention{{Repos: []string{"ci/*"}}}}, "keep everything"},
		{Set{Retentions: []Retention{{KeepLast: 3}}}, "no repos"},
		{Set{Retentions: []Retention{{Repos: []string{"ci/*"}, KeepPulledWithin: -time.Hour}}}, "negative"},
		{Set{Quotas: []Quota{{Repos: []string{"a"}, MaxBytes: -1}}}, "max-bytes"},
		{Set{Quotas: []Quota{{Repos: []string{"a"}, MaxTags: -1}}}, "max-tags"},
		{Set{Quotas: []Quota{{Repos: []string{""}}}}, "empty repository pattern"},
	} {
		err := c.s.Validate()
		if !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want ErrRule saying %q", c.s, err, c.want)
		}
	}
}
