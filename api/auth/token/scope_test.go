package token

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseScopes(t *testing.T) {
	cases := []struct {
		name   string
		params []string
		want   []Access
	}{
		{"one", []string{"repository:team/app:pull"},
			[]Access{{"repository", "team/app", []string{"pull"}}}},
		{"several actions sorted", []string{"repository:a:push,pull"},
			[]Access{{"repository", "a", []string{"pull", "push"}}}},
		{"several per param", []string{"repository:b:push repository:a:pull"},
			[]Access{{"repository", "a", []string{"pull"}}, {"repository", "b", []string{"push"}}}},
		{"repeated params merge", []string{"repository:a:pull", "repository:a:push", "repository:a:pull"},
			[]Access{{"repository", "a", []string{"pull", "push"}}}},
		{"duplicate actions", []string{"repository:a:pull,pull,delete"},
			[]Access{{"repository", "a", []string{"delete", "pull"}}}},
		{"catalog", []string{"registry:catalog:*"},
			[]Access{{"registry", "catalog", []string{"*"}}}},
		{"class dropped", []string{"repository(plugin):a:pull"},
			[]Access{{"repository", "a", []string{"pull"}}}},
		{"all actions", []string{"repository:a.b/c-d__e:*"},
			[]Access{{"repository", "a.b/c-d__e", []string{"*"}}}},
		{"no scope", nil, []Access{}},
		{"empty param", []string{""}, []Access{}},
	}
	for _, c := range cases {
		got, err := ParseScopes(c.params, testName)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseScopesRefuses(t *testing.T) {
	many := strings.TrimSpace(strings.Repeat("repository:a:pull ", MaxScopes+1))
	cases := map[string][]string{
		"separator smuggling":  {"repository:a:pull,push repository:b"},
		"comma then resource":  {"repository:a:pull,push,repository:b:push"},
		"newline":              {"repository:a:pull\nrepository:b:push"},
		"tab":                  {"repository:a:pull\trepository:b:push"},
		"carriage return":      {"repository:a:pull\r"},
		"nul":                  {"repository:a\x00:pull"},
		"double space":         {"repository:a:pull  repository:b:pull"},
		"leading space":        {" repository:a:pull"},
		"uppercase":            {"repository:Team/app:pull"},
		"dot dot":              {"repository:a/../b:pull"},
		"only dots":            {"repository:..:pull"},
		"leading slash":        {"repository:/a:pull"},
		"colon in name":        {"repository:a:b:pull"},
		"host port in name":    {"repository:localhost:5000/a:pull"},
		"empty name":           {"repository::pull"},
		"no actions":           {"repository:a:"},
		"empty action":         {"repository:a:pull,,push"},
		"trailing comma":       {"repository:a:pull,"},
		"unknown action":       {"repository:a:admin"},
		"two parts":            {"repository:a"},
		"one part":             {"repository"},
		"unknown type":         {"namespace:a:pull"},
		"empty type":           {":a:pull"},
		"catalog pull":         {"registry:catalog:pull"},
		"registry other":       {"registry:other:*"},
		"unclosed class":       {"repository(plugin:a:pull"},
		"bad class":            {"repository(Plug):a:pull"},
		"non-ascii":            {"repository:caf\u00e9:pull"},
		"percent":              {"repository:a%2fb:pull"},
		"good then bad":        {"repository:a:pull", "repository:B:pull"},
		"too many":             {many},
		"too many over params": append(strings.Split(many, " ")[:MaxScopes], "repository:z:pull"),
		"too long":             {"repository:" + strings.Repeat("a", MaxScopeBytes) + ":pull"},
	}
	for name, params := range cases {
		got, err := ParseScopes(params, testName)
		if !errors.Is(err, ErrBadScope) {
			t.Errorf("%s: %q: got %v, %v; want ErrBadScope", name, params, got, err)
		}
	}
	// The limit itself is allowed.
	if _, err := ParseScopes(strings.Split(many, " ")[:MaxScopes], testName); err != nil {
		t.Errorf("%d scopes: %v", MaxScopes, err)
	}
}

func TestAccessString(t *testing.T) {
	a := Access{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}
	if s := a.String(); s != "repository:team/app:pull,push" {
		t.Fatal(s)
	}
	got, err := ParseScopes([]string{a.String()}, testName)
	if err != nil || !reflect.DeepEqual(got, []Access{a}) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
}
