// Package auth owns who a caller is and what the caller may do: the users
// of an htpasswd file (bcrypt hashes only), a short-lived memory of
// passwords that checked out (bcrypt is slow on purpose, and a push sends
// its credentials with every request), and the access rules that grant
// pull, push and delete on repository patterns to users, groups and
// anonymous callers; and the rules of robot accounts (names, grants,
// lifetimes, kvreg_ secrets kept as their SHA-256 and checked in constant
// time). Tokens themselves (scopes, claims, keys, signing and verifying)
// are package auth/token's. It knows nothing of HTTP or of the store;
// package api asks it, and package api/authstore keeps its robots and the
// signing keys.
package auth
