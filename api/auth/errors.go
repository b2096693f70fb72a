package auth

import "errors"

var (
	// ErrHtpasswd: the htpasswd file cannot be used.
	ErrHtpasswd = errors.New("htpasswd")
	// ErrNotBcrypt: a line of the htpasswd file holds another kind of hash.
	ErrNotBcrypt = errors.New("not a bcrypt hash (create it with `htpasswd -B`)")
	// ErrRule: an access rule is malformed.
	ErrRule = errors.New("access rule")
)
