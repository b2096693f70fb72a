package token

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a verified or issued token, as plain values;
// times are in UTC.
type Claims struct {
	Issuer    string
	Subject   string // the user or robot name; empty for anonymous
	Audience  []string
	Expires   time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	ID        string // jti
	Access    []Access
	// Refresh marks a refresh token: it grants no access by itself, only
	// new access tokens for Subject at the token endpoint.
	Refresh bool
	// Credential, on a refresh token, names the credential it was issued
	// against (a fingerprint of the user's password entry): the token
	// endpoint honours it only while the user's entry is the same.
	Credential string
}

// wireClaims is the JSON form: the registered claims, the token spec's
// access claim, and kvreg's private mark of a refresh token.
type wireClaims struct {
	jwt.RegisteredClaims
	Access  []Access `json:"access,omitempty"`
	Refresh bool     `json:"kvreg_refresh,omitempty"`
	// Credential: kvreg's private claim of a refresh token's credential.
	Credential string `json:"kvreg_cred,omitempty"`
}

func (w *wireClaims) claims() Claims {
	c := Claims{
		Issuer:   w.Issuer,
		Subject:  w.Subject,
		Audience: []string(w.Audience),
		ID:       w.ID,
		Access:   w.Access,
		Refresh:  w.Refresh,

		Credential: w.Credential,
	}
	if w.ExpiresAt != nil {
		c.Expires = w.ExpiresAt.UTC()
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.UTC()
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.UTC()
	}
	return c
}
