package auth

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options tune the check of passwords.
type Options struct {
	// CacheTTL is how long a password that checked out is remembered
	// (1 minute when zero; negative: not at all).
	CacheTTL time.Duration
	// CacheSize bounds how many such passwords are remembered (1024 when zero).
	CacheSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Users are the accounts of an htpasswd file.
type Users struct {
	hashes map[string][]byte
	cache  *okCache
	// sem bounds the bcrypt comparisons running at once, so that a flood of
	// wrong passwords cannot take every CPU.
	sem   chan struct{}
	dummy []byte // compared against for unknown users, to take the same time
}

// LoadHtpasswd reads an htpasswd file.
func LoadHtpasswd(path string, o Options) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHtpasswd, err)
	}
	defer f.Close()
	u, err := ParseHtpasswd(f, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// ParseHtpasswd reads "user:hash" lines; blank lines and lines starting
// with # are skipped. Every hash must be bcrypt ($2a$, $2b$ or $2y$): other
// kinds (MD5 $apr1$, {SHA}, crypt) are refused, naming the line.
func ParseHtpasswd(r io.Reader, o Options) (*Users, error) {
	if o.CacheTTL == 0 {
		o.CacheTTL = time.Minute
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u := &Users{
		hashes: map[string][]byte{},
		cache:  newOKCache(o.CacheTTL, o.CacheSize, o.Now),
		sem:    make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%w: line %d: want user:hash", ErrHtpasswd, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%w: line %d: user %q: %w", ErrHtpasswd, n, user, ErrNotBcrypt)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%w: line %d: user %q appears twice", ErrHtpasswd, n, user)
		}
		u.hashes[user] = []byte(hash)
		if u.dummy == nil {
			u.dummy = []byte(hash)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHtpasswd, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%w: no users", ErrHtpasswd)
	}
	return u, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// Has reports whether a user exists.
func (u *Users) Has(user string) bool { _, ok := u.hashes[user]; return ok }

// Credential names user's entry as it is now, for a refresh token to be
// bound to (token.Claims.Credential): a fingerprint of the password's
// hash, which a new password (or the same one set again: bcrypt salts each
// hash) changes, and which tells nothing of the password. "" for a user
// that does not exist.
func (u *Users) Credential(user string) string {
	hash, ok := u.hashes[user]
	if !ok {
		return ""
	}
	s := sha256.Sum256(append([]byte("kvreg refresh credential\x00"), hash...))
	return base64.RawURLEncoding.EncodeToString(s[:12])
}

// Check reports whether password is user's.
func (u *Users) Check(user, password string) bool {
	key := user + "\x00" + string(sumPassword(password))
	if u.cache.hit(key) {
		return true
	}
	hash, known := u.hashes[user]
	if !known {
		hash = u.dummy
	}
	u.sem <- struct{}{}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-u.sem
	if err != nil || !known {
		return false
	}
	u.cache.add(key)
	return true
}

// sumPassword is what the cache keeps instead of the password.
func sumPassword(p string) []byte {
	s := sha256.Sum256([]byte(p))
	return s[:]
}
