// Package authstore keeps kvreg's credentials in its database: robot
// accounts and the keys that sign tokens. It turns package auth's rules
// into kv records and back, and runs each operation (create, list, revoke,
// look up, rotate the signing key) as one kv transaction, so that the
// admin socket of a running server and an offline `kvreg token` do the
// same thing. It knows nothing of HTTP, and it never holds a secret: a
// robot's is returned once by CreateRobot and only its hash is stored.
package authstore
