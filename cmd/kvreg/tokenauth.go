package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth/token"
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
// or generated now), its issuer, and a verifier of its own tokens and of
// the outside issuers' (--token-issuer).
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
	} else {
		if key, err = token.NewSigningKey(); err != nil {
			return nil, err
		}
		msg := "token signing key generated at startup: tokens end with the process (give --token-key to keep them)"
		if cfg.replicas {
			msg = "token signing key generated at startup: other replicas refuse this one's tokens; give every replica the same --token-key"
		}
		log.Warn(msg, "kid", key.KID())
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
