package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestHtpasswdParse(t *testing.T) {
	good := "# users\n\nalice:" + hash(t, "a-pass") + "\nbob:" + hash(t, "b-pass") + "\n"
	u, err := ParseHtpasswd(strings.NewReader(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 || !u.Has("alice") || u.Has("carol") {
		t.Fatalf("users: %d", u.Len())
	}
	for _, c := range []struct {
		name, text string
		want       error
		line       string
	}{
		{"md5", "alice:" + hash(t, "x") + "\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", ErrNotBcrypt, "line 2"},
		{"sha", "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", ErrNotBcrypt, "line 1"},
		{"crypt", "dave:rl0P1Dxtc3J1o\n", ErrNotBcrypt, "line 1"},
		{"plain", "erin:secret\n", ErrNotBcrypt, "line 1"},
		{"no colon", "frank\n", ErrHtpasswd, "line 1"},
		{"duplicate", "g:" + hash(t, "1") + "\ng:" + hash(t, "2") + "\n", ErrHtpasswd, "line 2"},
		{"empty", "# nobody\n", ErrHtpasswd, "no users"},
	} {
		_, err := ParseHtpasswd(strings.NewReader(c.text), Options{})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%s: %v, want %v mentioning %q", c.name, err, c.want, c.line)
		}
	}
	if _, err := LoadHtpasswd("/nonexistent/htpasswd", Options{}); !errors.Is(err, ErrHtpasswd) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckAndCache(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	u, err := ParseHtpasswd(strings.NewReader("alice:"+hash(t, "right")+"\n"), Options{CacheTTL: time.Minute, CacheSize: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if u.Check("alice", "wrong") || u.Check("mallory", "right") || u.Check("alice", "") {
		t.Fatal("a wrong password or user passed")
	}
	if u.cache.len() != 0 {
		t.Fatal("failures must not be remembered")
	}
	if !u.Check("alice", "right") {
		t.Fatal("right password refused")
	}
	key := "alice\x00" + string(sumPassword("right"))
	if !u.cache.hit(key) {
		t.Fatal("success not remembered")
	}
	for k := range u.cache.expires {
		if strings.Contains(k, "right") {
			t.Fatal("the cache holds the password itself")
		}
	}
	clk.Advance(59 * time.Second)
	if !u.cache.hit(key) {
		t.Fatal("forgotten before the TTL")
	}
	clk.Advance(2 * time.Second)
	if u.cache.hit(key) {
		t.Fatal("remembered after the TTL")
	}
	// Bounded: more distinct successes than the size never grow it past it.
	for i := 0; i < 10; i++ {
		u.cache.add(fmt.Sprint(i))
		if u.cache.len() > 2 {
			t.Fatalf("cache grew to %d", u.cache.len())
		}
	}
	if !u.Check("alice", "right") {
		t.Fatal("right password refused after expiry")
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		want bool
	}{
		{"*", "a", true},
		{"*", "team/app/sub", true},
		{"team/*", "team/app", true},
		{"team/*", "team/app/sub", true},
		{"team/*", "team", false},
		{"team/*", "teams/app", false},
		{"team/*/prod", "team/app/prod", true},
		{"team/*/prod", "team/app/dev", false},
		{"app", "app", true},
		{"app", "app2", false},
		{"app?", "app2", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*-cache", "ci/build-cache", true},
		{"", "", true},
	} {
		if got := match(c.p, c.n); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.p, c.n, got, c.want)
		}
	}
}

func TestAccess(t *testing.T) {
	users := map[string]bool{"alice": true, "bob": true, "carol": true, "robot": true}
	known := func(u string) bool { return users[u] }
	a, err := NewAccess([]Rule{
		{Repos: []string{"*"}, Users: []string{"alice"}, Actions: []Action{Pull, Push, Delete}},
		{Repos: []string{"team/*"}, Groups: []string{"devs"}, Actions: []Action{Pull, Push}},
		{Repos: []string{"team/*", "tools"}, Users: []string{AllUsers}, Actions: []Action{Pull}},
		{Repos: []string{"public/*"}, Anonymous: true, Actions: []Action{Pull}},
	}, map[string][]string{"devs": {"bob"}}, known)
	if err != nil {
		t.Fatal(err)
	}
	if !a.AllowsAnonymous() {
		t.Fatal("anonymous pull not seen")
	}
	anon, alice, bob, carol := Caller{}, Caller{"alice"}, Caller{"bob"}, Caller{"carol"}
	for _, c := range []struct {
		who  Caller
		repo string
		act  Action
		want bool
	}{
		{alice, "anything/at/all", Delete, true},
		{bob, "team/app", Push, true},
		{bob, "team/app", Delete, false},
		{bob, "other", Pull, false},
		{carol, "team/app", Pull, true},
		{carol, "team/app", Push, false},
		{carol, "tools", Pull, true},
		{carol, "public/x", Pull, true}, // what anonymous may, users may
		{anon, "public/x", Pull, true},
		{anon, "public/x", Push, false},
		{anon, "team/app", Pull, false},
	} {
		if got := a.Allowed(c.who, c.repo, c.act); got != c.want {
			t.Errorf("%+v %s %s: %v, want %v", c.who, c.act, c.repo, got, c.want)
		}
	}
	for _, c := range []struct {
		name  string
		rules []Rule
		grp   map[string][]string
		want  string
	}{
		{"no repos", []Rule{{Users: []string{"alice"}, Actions: []Action{Pull}}}, nil, "no repos"},
		{"bad action", []Rule{{Repos: []string{"*"}, Users: []string{"alice"}, Actions: []Action{"write"}}}, nil, "unknown action"},
		{"nobody", []Rule{{Repos: []string{"*"}, Actions: []Action{Pull}}}, nil, "grants nobody"},
		{"unknown user", []Rule{{Repos: []string{"*"}, Users: []string{"alcie"}, Actions: []Action{Pull}}}, nil, "alcie"},
		{"unknown group", []Rule{{Repos: []string{"*"}, Groups: []string{"ops"}, Actions: []Action{Pull}}}, nil, "unknown group"},
		{"group member", nil, map[string][]string{"ops": {"zed"}}, "zed"},
		{"uppercase", []Rule{{Repos: []string{"Team/*"}, Users: []string{"alice"}, Actions: []Action{Pull}}}, nil, "not allowed"},
	} {
		_, err := NewAccess(c.rules, c.grp, known)
		if !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an ErrRule mentioning %q", c.name, err, c.want)
		}
	}
}

// A user's credential is the same for the same entry, and another for the
// password set again (a new salt), whatever the password; none for a
// user who is not there.
func TestCredential(t *testing.T) {
	entry := "alice:" + hash(t, "pw") + "\n"
	parse := func(text string) *Users {
		u, err := ParseHtpasswd(strings.NewReader(text), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	a, b, again := parse(entry), parse(entry), parse("alice:"+hash(t, "pw")+"\n")
	if a.Credential("alice") == "" || a.Credential("alice") != b.Credential("alice") {
		t.Fatalf("one entry, two credentials: %q %q", a.Credential("alice"), b.Credential("alice"))
	}
	if a.Credential("alice") == again.Credential("alice") {
		t.Fatal("the password set again keeps its credential")
	}
	if a.Credential("bob") != "" {
		t.Fatalf("an unknown user's credential: %q", a.Credential("bob"))
	}
	if strings.Contains(a.Credential("alice"), "$2") {
		t.Fatalf("the credential shows the hash: %q", a.Credential("alice"))
	}
}
