package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRobotNames(t *testing.T) {
	for _, ok := range []string{"a", "ci", "ci-bot.2_x", "0", strings.Repeat("a", 64)} {
		if err := ValidRobotName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-ci", ".ci", "_ci", "CI", "ci bot", "ci/bot", "ci:x", "ci\x00", "é", strings.Repeat("a", 65)} {
		if err := ValidRobotName(bad); !errors.Is(err, ErrRobot) {
			t.Errorf("%q: %v, want ErrRobot", bad, err)
		}
	}
}

func TestRobotActionsReposLifetime(t *testing.T) {
	acts, err := ParseRobotActions("delete,pull,push,pull")
	if err != nil || len(acts) != 3 || acts[0] != Pull || acts[1] != Push || acts[2] != Delete {
		t.Fatalf("actions %v, %v", acts, err)
	}
	for _, bad := range []string{"", "write", "pull,", "pull,admin", "*"} {
		if _, err := ParseRobotActions(bad); !errors.Is(err, ErrRobot) {
			t.Errorf("actions %q: %v, want ErrRobot", bad, err)
		}
	}
	repos, err := ParseRobotRepos("team/*, tools,team/*")
	if err != nil || strings.Join(repos, " ") != "team/* tools" {
		t.Fatalf("repos %v, %v", repos, err)
	}
	for _, bad := range []string{"", "team/*,", "Team", "a b", "x:y", "x\ny", strings.Repeat("a,", 65) + "a"} {
		if _, err := ParseRobotRepos(bad); !errors.Is(err, ErrRobot) {
			t.Errorf("repos %q: %v, want ErrRobot", bad, err)
		}
	}
	for s, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "720h": 720 * time.Hour, "1h30m": 90 * time.Minute} {
		if d, err := ParseLifetime(s); err != nil || d != want {
			t.Errorf("lifetime %q: %v %v, want %v", s, d, err, want)
		}
	}
	for _, bad := range []string{"", "never", "0d", "-1d", "0s", "-5h", "1.5d", "d", "99999999999d", "12"} {
		if _, err := ParseLifetime(bad); !errors.Is(err, ErrRobot) {
			t.Errorf("lifetime %q: %v, want ErrRobot", bad, err)
		}
	}
}

func TestRobotSecretAndLife(t *testing.T) {
	s1, h1, err := NewRobotSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _, _ := NewRobotSecret()
	if s1 == s2 || !IsRobotSecret(s1) || IsRobotSecret("hunter2") {
		t.Fatalf("secrets %q %q", s1, s2)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s1, SecretPrefix))
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", s1, len(raw), err)
	}
	if want := sha256.Sum256([]byte(s1)); string(h1) != string(want[:]) {
		t.Fatal("hash is not the secret's SHA-256")
	}
	if !CheckSecret(s1, h1) || CheckSecret(s2, h1) || CheckSecret(s1[:len(s1)-1], h1) || CheckSecret(s1, nil) {
		t.Fatal("CheckSecret")
	}
	now := time.Unix(1000, 0)
	r := Robot{Name: "ci", Hash: h1, Repos: []string{"team/*"}, Actions: []Action{Pull, Push}, Created: now, Expires: now.Add(time.Hour)}
	if err := r.Login(s1, now); err != nil {
		t.Fatal(err)
	}
	if err := r.Login(s2, now); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := r.Login(s1, now.Add(time.Hour)); !errors.Is(err, ErrRobotExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	r.Revoked = now
	if err := r.Login(s1, now); !errors.Is(err, ErrRobotRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if err := r.Login(s2, now); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("revoked, wrong secret: %v", err)
	}
	for _, c := range []struct {
		repo string
		act  Action
		want bool
	}{{"team/app", Pull, true}, {"team/app", Push, true}, {"team/app", Delete, false}, {"other", Pull, false}, {"team", Pull, false}} {
		if got := r.Allows(c.repo, c.act); got != c.want {
			t.Errorf("Allows(%s, %s) = %v", c.repo, c.act, got)
		}
	}
}
