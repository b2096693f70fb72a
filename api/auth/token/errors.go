package token

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Refusals of a token, one per reason, so that callers can count and log
// them. Every error Verify returns wraps exactly one of these.
var (
	ErrMalformed    = errors.New("token malformed")
	ErrTooLarge     = errors.New("token too large")
	ErrAlgorithm    = errors.New("token algorithm not accepted")
	ErrSignature    = errors.New("token signature invalid")
	ErrUnknownKey   = errors.New("token signed by an unknown key")
	ErrIssuer       = errors.New("token issuer not trusted")
	ErrAudience     = errors.New("token audience is not this service")
	ErrExpired      = errors.New("token expired")
	ErrNotYetValid  = errors.New("token not yet valid")
	ErrRefreshToken = errors.New("refresh token used as an access token")
	ErrNotRefresh   = errors.New("access token used as a refresh token")
	ErrBadScope     = errors.New("scope malformed")
)

// Errors of setting things up rather than of a token.
var (
	// ErrKey: a signing key or a public key cannot be used.
	ErrKey = errors.New("key")
	// ErrConfig: an issuer or verifier is misconfigured.
	ErrConfig = errors.New("token configuration")
)

var reasons = []struct {
	err   error
	label string
}{
	{ErrTooLarge, "too_large"},
	{ErrAlgorithm, "algorithm"},
	{ErrUnknownKey, "unknown_key"},
	{ErrIssuer, "issuer"},
	{ErrSignature, "signature"},
	{ErrAudience, "audience"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrRefreshToken, "refresh_token"},
	{ErrNotRefresh, "not_refresh"},
	{ErrBadScope, "bad_scope"},
	{ErrMalformed, "malformed"},
}

// Reason gives a short, fixed label for the refusal err wraps, fit for a
// metric label: "too_large", "algorithm", "unknown_key", "issuer",
// "signature", "audience", "expired", "not_yet_valid", "refresh_token",
// "not_refresh", "bad_scope", "malformed", or "other".
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}

// refusal maps an error of the JWT library to one of ours. Errors the key
// lookup returned already carry our sentinel and are kept as they are.
func refusal(err error) error {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return err
		}
	}
	var sentinel error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		sentinel = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		sentinel = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		sentinel = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		sentinel = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		sentinel = ErrAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		sentinel = ErrIssuer
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An alg the library does not know, or none at all.
		sentinel = ErrAlgorithm
	default:
		sentinel = ErrMalformed
	}
	return fmt.Errorf("%w: %v", sentinel, err)
}
