// Package auth owns who a caller is and what the caller may do: the users
// of an htpasswd file (bcrypt hashes only), a short-lived memory of
// passwords that checked out (bcrypt is slow on purpose, and a push sends
// its credentials with every request), and the access rules that grant
// pull, push and delete on repository patterns to users, groups and
// anonymous callers. It knows nothing of HTTP; package api asks it.
package auth
