// Package token owns the JSON Web Tokens of the Docker registry token
// protocol as kvreg speaks it: the grammar of the scope a client asks for,
// the claims of access and refresh tokens, kvreg's own ES256 signing keys
// (named by their RFC 7638 thumbprint), issuing tokens with the current key,
// and verifying tokens signed by kvreg's current or previous keys or by an
// outside issuer whose public keys come from a PEM or JWKS file.
//
// It is pure computation on bytes and keys: it serves no HTTP, reads and
// writes no database, and decides nothing about who may do what. Where keys
// are kept, which scope a caller is granted, and how a refusal is answered
// belong to package api and package api/authstore. Repository names are judged by a
// function the caller passes in, so that the name grammar has one owner.
package token
