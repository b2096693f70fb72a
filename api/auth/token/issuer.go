package token

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultName is the iss and aud kvreg uses when none is configured.
const DefaultName = "kvreg"

// IssuerConfig configures an Issuer. Empty Name and Service default to
// DefaultName; a nil Clock to time.Now.
type IssuerConfig struct {
	Name    string // the iss claim
	Service string // the aud claim: the service clients name at the token endpoint
	Key     *SigningKey
	Clock   func() time.Time
}

// Issuer signs kvreg's tokens with the current signing key.
type Issuer struct {
	name, service string
	clock         func() time.Time
	key           atomic.Pointer[SigningKey]
}

// NewIssuer checks cfg and builds an Issuer.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("%w: issuer needs a signing key", ErrConfig)
	}
	i := &Issuer{name: orDefault(cfg.Name), service: orDefault(cfg.Service), clock: cfg.Clock}
	if i.clock == nil {
		i.clock = time.Now
	}
	i.key.Store(cfg.Key)
	return i, nil
}

func orDefault(s string) string {
	if s == "" {
		return DefaultName
	}
	return s
}

// SetKey makes k the key new tokens are signed with (after a rotation).
func (i *Issuer) SetKey(k *SigningKey) {
	if k != nil {
		i.key.Store(k)
	}
}

// KID names the key new tokens are signed with.
func (i *Issuer) KID() string { return i.key.Load().KID() }

// Issue signs an access token for sub (empty for anonymous) granting
// access, valid for ttl from now.
func (i *Issuer) Issue(sub string, access []Access, ttl time.Duration) (string, Claims, error) {
	cp := make([]Access, len(access))
	for n, a := range access {
		cp[n] = Access{Type: a.Type, Name: a.Name, Actions: slices.Clone(a.Actions)}
	}
	return i.sign(sub, cp, "", ttl)
}

// IssueRefresh signs a refresh token for sub, valid for ttl and bound to
// credential (see Claims.Credential): it is accepted only where a refresh
// token is asked for (VerifyRefresh), and never as an access token.
func (i *Issuer) IssueRefresh(sub, credential string, ttl time.Duration) (string, Claims, error) {
	if sub == "" || credential == "" {
		return "", Claims{}, fmt.Errorf("%w: a refresh token needs a subject and a credential", ErrConfig)
	}
	return i.sign(sub, nil, credential, ttl)
}

// sign signs a token; a refresh token when credential is not "".
func (i *Issuer) sign(sub string, access []Access, credential string, ttl time.Duration) (string, Claims, error) {
	if ttl <= 0 {
		return "", Claims{}, fmt.Errorf("%w: token lifetime %v", ErrConfig, ttl)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", Claims{}, err
	}
	now := i.clock().Truncate(time.Second)
	w := &wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.name,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{i.service},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        b64(id[:]),
		},
		Access:     access,
		Refresh:    credential != "",
		Credential: credential,
	}
	key := i.key.Load()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, w)
	t.Header["kid"] = key.KID()
	s, err := t.SignedString(key.priv)
	if err != nil {
		return "", Claims{}, fmt.Errorf("%w: sign: %v", ErrKey, err)
	}
	return s, w.claims(), nil
}
