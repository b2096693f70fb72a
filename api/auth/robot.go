package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every robot secret, so that a password that is one
// is told apart from a user's without a lookup.
const SecretPrefix = "kvreg_"

// secretBytes is the randomness of a robot secret: 256 bits, which no
// guessing reaches, so that its SHA-256 is all the store needs to keep
// (a slow hash protects guessable passwords, not random keys).
const secretBytes = 32

// maxRobotRepos bounds a robot's repository patterns.
const maxRobotRepos = 64

// Robot is a robot account as the rules see it: what its tokens may be
// granted, and until when.
type Robot struct {
	Name     string
	Hash     []byte   // SHA-256 of the secret
	Repos    []string // repository patterns (the access rules' syntax)
	Actions  []Action
	Created  time.Time
	Expires  time.Time
	Revoked  time.Time // zero: not revoked
	LastUsed time.Time // zero: never
}

// ValidRobotName accepts [a-z0-9][a-z0-9._-]{0,63}.
func ValidRobotName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: name %q: 1 to 64 characters", ErrRobot, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && strings.ContainsRune("._-", r)
		if !ok {
			return fmt.Errorf("%w: name %q: lowercase letters, digits, and . _ - after the first", ErrRobot, name)
		}
	}
	return nil
}

// ParseRobotActions reads a comma-separated list of pull, push and
// delete; it returns them deduplicated, in that order.
func ParseRobotActions(list string) ([]Action, error) {
	var out []Action
	for _, a := range strings.Split(list, ",") {
		act := Action(strings.TrimSpace(a))
		switch act {
		case Pull, Push, Delete:
		default:
			return nil, fmt.Errorf("%w: action %q: only pull, push and delete", ErrRobot, act)
		}
		if !slices.Contains(out, act) {
			out = append(out, act)
		}
	}
	slices.SortFunc(out, func(a, b Action) int { return actionRank(a) - actionRank(b) })
	return out, nil
}

func actionRank(a Action) int { return slices.Index([]Action{Pull, Push, Delete}, a) }

// ParseRobotRepos reads a comma-separated list of repository patterns,
// each valid as in an access rule.
func ParseRobotRepos(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	if len(parts) > maxRobotRepos {
		return nil, fmt.Errorf("%w: %d repository patterns, at most %d", ErrRobot, len(parts), maxRobotRepos)
	}
	var out []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if err := validPattern(p); err != nil {
			// The rules' own check, said as a robot's.
			return nil, fmt.Errorf("%w: %s", ErrRobot, strings.TrimPrefix(err.Error(), ErrRule.Error()+": "))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ParseLifetime reads a robot's lifetime: a Go duration (720h) or a
// whole number of days (90d), positive.
func ParseLifetime(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100*365 {
			return 0, fmt.Errorf("%w: lifetime %q: a whole number of days (90d) or a duration (720h)", ErrRobot, s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%w: lifetime %q: a whole number of days (90d) or a duration (720h)", ErrRobot, s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w: lifetime %q: must be positive", ErrRobot, s)
	}
	return d, nil
}

// NewRobotSecret returns a new secret, SecretPrefix and 32 random bytes in
// unpadded base64url, and its hash to store.
func NewRobotSecret() (secret string, hash []byte, err error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// IsRobotSecret reports whether a password has the form of a robot
// secret (the prefix), whatever its value.
func IsRobotSecret(password string) bool { return strings.HasPrefix(password, SecretPrefix) }

// HashSecret is what the store keeps of a secret: its SHA-256.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CheckSecret reports whether a presented secret is the one hashed, in
// time that does not depend on where they differ.
func CheckSecret(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), hash) == 1
}

// Usable says whether the robot may be given tokens at now: nil, or
// ErrRobotRevoked or ErrRobotExpired.
func (r Robot) Usable(now time.Time) error {
	switch {
	case !r.Revoked.IsZero():
		return fmt.Errorf("%w: robot %q since %s", ErrRobotRevoked, r.Name, r.Revoked.UTC().Format(time.RFC3339))
	case !now.Before(r.Expires):
		return fmt.Errorf("%w: robot %q at %s", ErrRobotExpired, r.Name, r.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Login checks a robot's presented secret and its life at now: nil, or
// ErrBadSecret, ErrRobotRevoked or ErrRobotExpired. The secret is checked
// first, so that a wrong one learns nothing of the robot's state.
func (r Robot) Login(secret string, now time.Time) error {
	if !CheckSecret(secret, r.Hash) {
		return fmt.Errorf("%w: robot %q", ErrBadSecret, r.Name)
	}
	return r.Usable(now)
}

// Allows reports whether the robot's grants cover an action on a
// repository (its life is Usable's to check).
func (r Robot) Allows(repo string, act Action) bool {
	if !slices.Contains(r.Actions, act) {
		return false
	}
	for _, p := range r.Repos {
		if match(p, repo) {
			return true
		}
	}
	return false
}
