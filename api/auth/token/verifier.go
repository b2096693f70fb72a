package token

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the tokens Verify reads: a token is parsed (base64
// and JSON) before its signature can be checked, so its size is bounded
// first. kvreg's own tokens stay far below it.
const MaxTokenBytes = 8 << 10

// DefaultLeeway tolerates clock skew between the replica (or outside
// issuer) that signed a token and the one that checks it.
const DefaultLeeway = 30 * time.Second

// VerifierConfig configures a Verifier. Empty Name and Service default to
// DefaultName, zero Leeway to DefaultLeeway, nil Clock to time.Now.
// ValidName is required: it judges the repository names of access claims.
type VerifierConfig struct {
	Name      string // kvreg's own iss
	Service   string // the aud every accepted token must name
	ValidName func(string) bool
	Clock     func() time.Time
	Leeway    time.Duration
}

// Verifier checks tokens signed by kvreg's own keys or by the outside
// issuers it was given. It is safe for concurrent use, key changes
// included.
type Verifier struct {
	name      string
	validName func(string) bool
	parser    *jwt.Parser

	mu   sync.Mutex // serializes writers of keys
	keys atomic.Pointer[keyring]
}

// keyring is an immutable snapshot of the keys trusted; writers replace it.
type keyring struct {
	own     map[string]PublicKey   // by kid
	outside map[string][]PublicKey // by issuer name
}

// NewVerifier checks cfg and builds a Verifier that trusts no key yet.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.ValidName == nil {
		return nil, fmt.Errorf("%w: verifier needs a repository name check", ErrConfig)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	v := &Verifier{
		name:      orDefault(cfg.Name),
		validName: cfg.ValidName,
		parser: jwt.NewParser(
			jwt.WithAudience(orDefault(cfg.Service)),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(clock),
			jwt.WithStrictDecoding(),
		),
	}
	v.keys.Store(&keyring{own: map[string]PublicKey{}, outside: map[string][]PublicKey{}})
	return v, nil
}

// SetOwnKeys replaces kvreg's own trusted keys: the current key and the
// retired ones still within the lifetime of the tokens they signed. A
// token whose kid is not among them is refused with ErrUnknownKey.
func (v *Verifier) SetOwnKeys(keys ...*SigningKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.keys.Load()
	own := make(map[string]PublicKey, len(keys))
	for _, k := range keys {
		own[k.KID()] = k.PublicKey()
	}
	v.keys.Store(&keyring{own: own, outside: old.outside})
}

// AddIssuer trusts tokens whose iss is name and that are signed by one of
// keys (from LoadPublicKeys). Adding a name again replaces its keys.
func (v *Verifier) AddIssuer(name string, keys []PublicKey) error {
	if name == "" || name == v.name {
		return fmt.Errorf("%w: outside issuer name %q is empty or kvreg's own", ErrConfig, name)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: outside issuer %q has no keys", ErrConfig, name)
	}
	for _, k := range keys {
		if err := checkPublicKey(k.Key); err != nil {
			return fmt.Errorf("outside issuer %q: %w", name, err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.keys.Load()
	outside := make(map[string][]PublicKey, len(old.outside)+1)
	for n, ks := range old.outside {
		outside[n] = ks
	}
	outside[name] = slices.Clone(keys)
	v.keys.Store(&keyring{own: old.own, outside: outside})
	return nil
}

// Verify checks an access token and returns its claims. A refresh token
// is refused with ErrRefreshToken.
func (v *Verifier) Verify(raw string) (Claims, error) { return v.verify(raw, false) }

// VerifyRefresh checks a refresh token (one of kvreg's own) and returns
// its claims. An access token is refused with ErrNotRefresh.
func (v *Verifier) VerifyRefresh(raw string) (Claims, error) { return v.verify(raw, true) }

func (v *Verifier) verify(raw string, refresh bool) (Claims, error) {
	if len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxTokenBytes)
	}
	ring := v.keys.Load()
	var w wireClaims
	var lookupErr error
	_, err := v.parser.ParseWithClaims(raw, &w, func(t *jwt.Token) (any, error) {
		key, err := v.lookup(ring, t, &w)
		lookupErr = err
		return key, err
	})
	if lookupErr != nil {
		// Our own reason, without the library's wording around it.
		return Claims{}, lookupErr
	}
	if err != nil {
		return Claims{}, refusal(err)
	}
	switch {
	case w.Refresh && !refresh:
		return Claims{}, ErrRefreshToken
	case !w.Refresh && refresh:
		return Claims{}, ErrNotRefresh
	case w.Refresh && (w.Issuer != v.name || len(w.Access) > 0 || w.Subject == ""):
		// Only kvreg issues refresh tokens, for a subject, granting nothing.
		return Claims{}, fmt.Errorf("%w: refresh token with access or from %q", ErrMalformed, w.Issuer)
	}
	if len(w.Access) > MaxScopes {
		return Claims{}, fmt.Errorf("%w: access claim of %d entries", ErrBadScope, len(w.Access))
	}
	for _, a := range w.Access {
		if err := checkAccess(a, v.validName); err != nil {
			return Claims{}, fmt.Errorf("%w: access claim %q: %v", ErrBadScope, a.String(), err)
		}
	}
	c := w.claims()
	for n := range c.Access {
		c.Access[n].Actions = sortedActions(c.Access[n].Actions)
	}
	return c, nil
}

// lookup picks the key(s) a token may be checked with: the issuer names
// the key set, the kid the key within it, and the alg must be the key's.
func (v *Verifier) lookup(ring *keyring, t *jwt.Token, w *wireClaims) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// Critical extensions kvreg does not implement must be refused.
		return nil, fmt.Errorf("%w: crit header", ErrMalformed)
	}
	alg := t.Method.Alg()
	if !slices.Contains(acceptedAlgs, alg) {
		return nil, fmt.Errorf("%w: %s", ErrAlgorithm, alg)
	}
	if len(w.Audience) == 0 {
		// The library reports a missing aud as a missing claim; it is the
		// audience check that fails.
		return nil, fmt.Errorf("%w: no aud", ErrAudience)
	}
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
		kid = s
	}
	if w.Issuer == v.name {
		k, ok := ring.own[kid]
		if !ok {
			return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
		}
		if !k.allows(alg) {
			return nil, fmt.Errorf("%w: %s with kid %q", ErrAlgorithm, alg, kid)
		}
		return k.Key, nil
	}
	keys, ok := ring.outside[w.Issuer]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrIssuer, w.Issuer)
	}
	// A kid the issuer declared picks its key; keys given without a kid (a
	// PEM file) are all tried, whatever kid the token names.
	var candidates []PublicKey
	for _, k := range keys {
		if kid != "" && k.KID == kid {
			candidates = []PublicKey{k}
			break
		}
		if k.KID == "" || kid == "" {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: issuer %q has no kid %q", ErrUnknownKey, w.Issuer, kid)
	}
	set := jwt.VerificationKeySet{}
	for _, k := range candidates {
		if k.allows(alg) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: %s fits no key of issuer %q", ErrAlgorithm, alg, w.Issuer)
	}
	return set, nil
}
