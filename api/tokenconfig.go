package api

import (
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
)

// TokenConfig turns on the Docker registry token flow (with Config.Users
// set): kvreg serves its own token endpoint at /token and /v2/ takes
// Bearer tokens, answering 401 with a Bearer challenge that names the
// endpoint. Basic credentials of the htpasswd users stay accepted on /v2/.
type TokenConfig struct {
	Issuer   *token.Issuer // signs the tokens /token hands out
	Verifier TokenVerifier // checks Bearer tokens: kvreg's own and outside issuers'
	// IssuerName is the iss of kvreg's own tokens (token.DefaultName when
	// empty); it must be the Issuer's. Only kvreg's own tokens of an
	// htpasswd user list the catalog by that user's access rules.
	IssuerName string
	// Realm is the token endpoint's URL in challenges. Empty: derived from
	// each request, its scheme (TLS, or a trusted proxy's
	// X-Forwarded-Proto) and Host, with the path /token.
	Realm string
	// Service is the service challenges name and /token accepts, the aud
	// of the tokens (token.DefaultName when empty).
	Service string
	// TTL is the lifetime of access tokens (5 minutes when zero);
	// RefreshTTL that of refresh tokens (7 days when zero).
	TTL, RefreshTTL time.Duration
	// Robots checks robot accounts' secrets at /token (nil: no robots).
	Robots RobotChecker
	// Clock is the time of issued_at and of the cache of verified tokens
	// (time.Now when nil); the Issuer and Verifier have their own.
	Clock func() time.Time
	// CacheSize bounds the verified tokens remembered (4096 when zero).
	CacheSize int
}

// TokenVerifier checks access and refresh tokens: a *token.Verifier, or
// one that reads the signing keys again for a key it does not know
// (authstore.Keyring, whose keys replicas share).
type TokenVerifier interface {
	Verify(raw string) (token.Claims, error)
	VerifyRefresh(raw string) (token.Claims, error)
}

// RobotChecker finds a robot account by name and checks its secret. A
// password without auth.SecretPrefix is never checked as a robot's, so
// that a robot cannot shadow a user.
type RobotChecker interface {
	// CheckRobot returns the robot (its Repos and Actions are its grant),
	// or an error wrapping auth.ErrRobotUnknown, auth.ErrBadSecret,
	// auth.ErrRobotExpired or auth.ErrRobotRevoked.
	CheckRobot(name, secret string) (auth.Robot, error)
}

const (
	defaultTokenTTL   = 5 * time.Minute
	defaultRefreshTTL = 7 * 24 * time.Hour
	defaultTokenCache = 4096
)

// withDefaults fills in the zero fields.
func (tc TokenConfig) withDefaults() *TokenConfig {
	if tc.IssuerName == "" {
		tc.IssuerName = token.DefaultName
	}
	if tc.Service == "" {
		tc.Service = token.DefaultName
	}
	if tc.TTL <= 0 {
		tc.TTL = defaultTokenTTL
	}
	if tc.RefreshTTL <= 0 {
		tc.RefreshTTL = defaultRefreshTTL
	}
	if tc.Clock == nil {
		tc.Clock = time.Now
	}
	if tc.CacheSize <= 0 {
		tc.CacheSize = defaultTokenCache
	}
	return &tc
}
