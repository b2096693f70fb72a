package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/api/authstore"
	"github.com/kvreg/kvreg/refcount"
)

// The token flow's settings: --auth-mode and the --token-* flags, checked
// with the others and turned into the API's TokenConfig.

// maxTokenTTL bounds --token-ttl: access tokens are meant to be short-lived
// (a revoked robot or removed user keeps its tokens until they expire).
const maxTokenTTL = 24 * time.Hour

// checkTokens refuses token settings that cannot work.
func (cfg *serveConfig) checkTokens() error {
	switch cfg.authMode {
	case "":
		if cfg.htpasswd != "" {
			cfg.authMode = "token"
		}
	case "token", "basic":
	default:
		return fmt.Errorf("%w: --auth-mode %q: token or basic", errConfig, cfg.authMode)
	}
	if cfg.authMode == "basic" {
		for _, f := range cfg.tokenFlags {
			if f != "auth-mode" {
				return fmt.Errorf("%w: --%s needs --auth-mode token", errConfig, f)
			}
		}
	}
	if cfg.tokenTTL <= 0 || cfg.tokenTTL > maxTokenTTL {
		return fmt.Errorf("%w: --token-ttl %v: more than 0, at most %v", errConfig, cfg.tokenTTL, maxTokenTTL)
	}
	if cfg.tokenRefreshTTL <= 0 {
		return fmt.Errorf("%w: --token-refresh-ttl %v: more than 0", errConfig, cfg.tokenRefreshTTL)
	}
	if cfg.tokenService == "" || strings.ContainsAny(cfg.tokenService, "\"\\ ,") {
		return fmt.Errorf("%w: --token-service %q: a name without spaces, commas, quotes or backslashes", errConfig, cfg.tokenService)
	}
	if cfg.tokenRealm != "" {
		u, err := url.Parse(cfg.tokenRealm)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(cfg.tokenRealm, "\"\\ ") {
			return fmt.Errorf("%w: --token-realm %q: an http:// or https:// URL", errConfig, cfg.tokenRealm)
		}
	}
	for _, ni := range cfg.tokenIssuers {
		name, file, ok := strings.Cut(ni, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("%w: --token-issuer %q: NAME=FILE", errConfig, ni)
		}
		if name == token.DefaultName {
			return fmt.Errorf("%w: --token-issuer %q: %q is kvreg's own issuer name", errConfig, ni, name)
		}
	}
	return nil
}

// tokenConfig builds the token flow: kvreg's signing key (from --token-key,
// or, until storeTokens puts the store's keys in, one made now), its
// issuer, and a verifier of its own tokens and of the outside issuers'
// (--token-issuer).
func tokenConfig(cfg *serveConfig, log *slog.Logger) (*api.TokenConfig, error) {
	var key *token.SigningKey
	var err error
	if cfg.tokenKey != "" {
		b, rerr := os.ReadFile(cfg.tokenKey)
		if rerr != nil {
			return nil, fmt.Errorf("%w: --token-key: %w", errConfig, rerr)
		}
		if key, err = token.ParseSigningKey(b); err != nil {
			return nil, fmt.Errorf("%w: --token-key %s: %w", errConfig, cfg.tokenKey, err)
		}
	} else if key, err = token.NewSigningKey(); err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(token.IssuerConfig{Service: cfg.tokenService, Key: key})
	if err != nil {
		return nil, err
	}
	verifier, err := token.NewVerifier(token.VerifierConfig{Service: cfg.tokenService, ValidName: api.ValidRepositoryName})
	if err != nil {
		return nil, err
	}
	verifier.SetOwnKeys(key)
	for _, ni := range cfg.tokenIssuers {
		name, file, _ := strings.Cut(ni, "=")
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: --token-issuer %s: %w", errConfig, name, err)
		}
		keys, err := token.LoadPublicKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%w: --token-issuer %s: %s: %w", errConfig, name, file, err)
		}
		if err := verifier.AddIssuer(name, keys); err != nil {
			return nil, fmt.Errorf("%w: --token-issuer %s: %w", errConfig, name, err)
		}
	}
	return &api.TokenConfig{
		Issuer: issuer, Verifier: verifier,
		Realm: cfg.tokenRealm, Service: cfg.tokenService,
		TTL: cfg.tokenTTL, RefreshTTL: cfg.tokenRefreshTTL,
	}, nil
}

// keyRefresh is how often a replica reads the signing keys again, so that
// a `kvreg token rotate-key` reaches every replica within it (one that
// meets a token of a key it does not know reads them at once).
const keyRefresh = 30 * time.Second

// storeTokens puts the store's parts into the token flow once the store is
// open: robot accounts, and, without --token-key, the signing keys kept in
// the database (made there by the first process to start), which every
// replica signs and verifies with. It returns the loop that reads the keys
// again until ctx ends (nil when there is none to run).
func storeTokens(tc *api.TokenConfig, cfg *serveConfig, reg *refcount.Registry, log *slog.Logger) (func(ctx context.Context), error) {
	if tc == nil {
		return nil, nil
	}
	tc.Robots = authstore.NewChecker(reg.DB(), reg.Clock)
	if cfg.tokenKey != "" {
		return nil, nil
	}
	v, ok := tc.Verifier.(*token.Verifier)
	if !ok {
		return nil, fmt.Errorf("token verifier: %T", tc.Verifier)
	}
	// A retired key stays trusted as long as a token it signed may live.
	keep := max(cfg.tokenTTL, cfg.tokenRefreshTTL) + token.DefaultLeeway
	ring := authstore.NewKeyring(reg.DB(), tc.Issuer, v, keep, reg.Clock)
	if err := ring.Load(); err != nil {
		return nil, fmt.Errorf("token signing keys: %w", err)
	}
	log.Info("token signing key", "kid", tc.Issuer.KID())
	tc.Verifier = ring
	return func(ctx context.Context) {
		t := time.NewTicker(keyRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := ring.Refresh(keyRefresh / 2); err != nil {
					log.Warn("reading the token signing keys", "err", err)
				}
			}
		}
	}, nil
}
